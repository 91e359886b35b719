/**
 * The spec's three use cases (normal operation, fault recovery, duplicate handling) as small
 * step-by-step diagrams in the architecture diagram's colours, shown in docs/diagrams.md.
 *
 * The steps describe what this project does (temp file + link publish, offsets/N before and commits/N
 * after a batch, the batch record in the same transaction as the rows), which both engines share; the
 * facts (events per file, triggers, reason code) come from the same inputs as the architecture diagram.
 */
import { formatTrigger } from '../config.js';
import type { Reason } from '../contract/event.js';
import { escapeHtml, span } from './dot.js';
import { readDeployment } from './deployment.js';
import type { ModelInputs } from './inputs.js';
import { FONT, MUTED_TEXT, PALETTE, type Palette } from './style.js';

export type Actor = 'generator' | 'volume' | 'engine' | 'postgres' | 'pgadmin' | 'checkpoints';

export interface UseCaseStep {
  actor: Actor;
  text: string;
  /** A failure is drawn in red; the steps that recover from it keep their actor's colours. */
  failure?: boolean;
}

export interface UseCase {
  id: string;
  /** Output base name, e.g. `use_case_1_normal_operation`. */
  file: string;
  title: string;
  subtitle: string;
  steps: UseCaseStep[];
}

const ACTORS: Record<Actor, { name: string; palette: Palette }> = {
  generator: { name: 'Generator', palette: PALETTE.generator },
  volume: { name: 'Landing folder', palette: PALETTE.volume },
  engine: { name: 'Engine', palette: PALETTE.worker },
  postgres: { name: 'PostgreSQL', palette: PALETTE.postgres },
  pgadmin: { name: 'pgAdmin', palette: PALETTE.pgadmin },
  checkpoints: { name: 'Checkpoint', palette: PALETTE.checkpoints },
};

const FAILURE: Palette = { fill: '#FFEBEE', stroke: '#C62828', text: '#000000' };
const DUPLICATE: Reason = 'duplicate_event_id';

export function buildUseCases(inputs: ModelInputs): UseCase[] {
  const { config } = inputs;
  // What Compose runs, as the architecture diagram shows it.
  const { eventsPerFile: perFile, trigger: spark } = readDeployment(config, inputs.root, inputs.compose);
  const sparkTrigger = spark.kind === 'interval' ? `every ${spark.seconds} s` : formatTrigger(spark);
  const tsTrigger = formatTrigger(config.engine.trigger);
  const both = 'Both engines (TypeScript by default, Spark on Docker Compose) take these steps.';
  return [
    {
      id: 'normal',
      file: 'use_case_1_normal_operation',
      title: 'Use case 1: Normal operation',
      subtitle: both,
      steps: [
        { actor: 'generator', text: `Writes ${perFile} events to a hidden .tmp file, then links it as events_…_1.csv` },
        { actor: 'volume', text: 'The file appears complete or not at all: a reader never sees half a file' },
        { actor: 'engine', text: `Next trigger (Spark: ${sparkTrigger}; TypeScript: ${tsTrigger}) finds it; writes offsets/0` },
        { actor: 'engine', text: 'Parses with the fixed schema, validates, drops duplicate event_ids' },
        { actor: 'postgres', text: 'One transaction: rows, rejected rows and the record of batch 0' },
        { actor: 'checkpoints', text: 'commits/0 is written: batch 0 is done' },
        { actor: 'pgadmin', text: 'The new rows are visible in user_events' },
      ],
    },
    {
      id: 'recovery',
      file: 'use_case_2_fault_recovery',
      title: 'Use case 2: Fault recovery',
      subtitle: both,
      steps: [
        { actor: 'checkpoints', text: 'offsets/5 records batch 5 (its files and timestamp) before any work' },
        { actor: 'postgres', text: 'Rows of batch 5 and its batch record are committed together' },
        { actor: 'engine', text: 'Crash before commits/5 is written', failure: true },
        { actor: 'engine', text: 'Restart: the checkpoint has offsets/5 but no commits/5' },
        { actor: 'engine', text: 'Replays batch 5 from offsets/5: same files, same timestamp, same decisions' },
        { actor: 'postgres', text: 'Batch 5 is already recorded: nothing is inserted twice (unique event_id backs this up)' },
        { actor: 'checkpoints', text: 'commits/5 is written; batch 6 is planned next' },
      ],
    },
    {
      id: 'duplicates',
      file: 'use_case_3_duplicate_handling',
      title: 'Use case 3: Duplicate handling',
      subtitle: `Duplicates are data: each one is a rejected_events row with reason ${DUPLICATE}.`,
      steps: [
        { actor: 'generator', text: 'A file contains the same event_id twice' },
        { actor: 'engine', text: 'Reads the file in batch N' },
        { actor: 'engine', text: 'Drops the second copy in memory (dropDuplicates on event_id)' },
        { actor: 'postgres', text: 'An event_id stored by an earlier batch meets the unique index: ON CONFLICT DO NOTHING' },
        { actor: 'postgres', text: 'Exactly one row per event_id in user_events; the batch record counts the duplicates' },
      ],
    },
  ];
}

/** One use case as DOT: numbered steps top to bottom, each tagged with its actor's colours. */
export function useCaseDot(uc: UseCase): string {
  const out: string[] = [];
  out.push('// Generated by `ecomstream diagram`. Do not edit: regenerate (npm run diagram).');
  out.push(`digraph ${uc.id} {`);
  const title =
    `<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2"><TR><TD>${span({ text: uc.title, kind: 'title', align: 'center' })}</TD></TR>` +
    `<TR><TD><FONT POINT-SIZE="${FONT.port}" COLOR="${MUTED_TEXT}">${escapeHtml(uc.subtitle)}</FONT></TD></TR></TABLE>`;
  out.push(
    `  graph [fontname="Helvetica", fontsize="12", bgcolor="white", pad="0.2", nodesep="0.25", ranksep="0.22", rankdir="TB", labelloc="t", label=<${title}>];`,
  );
  out.push('  node [fontname="Helvetica", fontsize="10", shape="plain"];');
  out.push('  edge [color="#9E9E9E", penwidth="1.5", arrowsize="0.7"];');
  uc.steps.forEach((s, i) => {
    const actor = ACTORS[s.actor];
    const p = s.failure ? FAILURE : actor.palette;
    const label =
      `<TABLE BORDER="${s.failure ? 2 : 1}" COLOR="${p.stroke}" CELLBORDER="0" CELLSPACING="3" CELLPADDING="4" STYLE="ROUNDED" BGCOLOR="#FFFFFF">` +
      `<TR><TD BGCOLOR="${p.fill}" WIDTH="110" ALIGN="LEFT"><FONT POINT-SIZE="${FONT.annotation}"><B>${i + 1}</B>  ${escapeHtml(actor.name)}</FONT></TD>` +
      `<TD WIDTH="330" ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="${FONT.annotation}">${wrap(s.text, 62).map(escapeHtml).join('<BR/>')}</FONT></TD></TR></TABLE>`;
    out.push(`  step${i + 1} [label=<${label}>, tooltip=${JSON.stringify(`${actor.name}: ${s.text}`)}];`);
  });
  for (let i = 1; i < uc.steps.length; i++) out.push(`  step${i} -> step${i + 1};`);
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** Greedy word wrap to at most `width` characters a line (Graphviz does not wrap HTML text). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(' ')) {
    if (cur && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines;
}
