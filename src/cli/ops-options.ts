/** The operations flags `process` and `up` share: metrics endpoint and stall alarm. */
import type { Command } from 'commander';
import type { OpsConfig } from '../config.js';
import { intOption, numberOption } from './common.js';

export interface OpsFlags {
  metricsPort: number;
  metricsHost: string;
  stallAfter: number;
}

export function addOpsOptions(cmd: Command, d: Readonly<OpsConfig>): Command {
  return cmd
    .option('--metrics-port <n>', 'serve /metrics, /livez and /readyz on this port (0 = off)', intOption('--metrics-port', 0, 65_535), d.metricsPort)
    .option('--metrics-host <host>', 'address the metrics endpoint binds to', d.metricsHost)
    .option(
      '--stall-after <seconds>',
      'alarm when files wait and no batch committed for this long',
      numberOption('--stall-after', 0.1, 86_400),
      d.stallAfterSeconds,
    );
}

export function opsOverrides(f: OpsFlags): Partial<OpsConfig> {
  return { metricsPort: f.metricsPort, metricsHost: f.metricsHost, stallAfterSeconds: f.stallAfter };
}
