/** External tools a test runs (promtool, prometheus, systemd-analyze): a developer without one gets a skip, CI a failure. */
import { spawnSync } from 'node:child_process';

/** Why `command` cannot run here (undefined when it can); under CI (CI=true) a missing tool throws. */
export function missingTool(command: string, install: string): string | undefined {
  if (spawnSync('sh', ['-c', `command -v ${command}`]).status === 0) return undefined;
  const why = `${command} is not installed (${install})`;
  if (process.env.CI) throw new Error(`${why}; CI must run this test`);
  return why;
}

export const PROMETHEUS_INSTALL = 'Debian: apt-get install prometheus, or bash scripts/install-ops-tools.sh';
export const SYSTEMD_INSTALL = 'Debian: apt-get install systemd, or bash scripts/install-ops-tools.sh';
