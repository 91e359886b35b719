/**
 * A systemd service's ExecStart run as systemd would start it, where no systemd is PID 1: the unit file
 * parsed (systemd.syntax(7): sections, `Key=value`, `#`/`;` comments, backslash continuations; repeated
 * keys accumulate, an empty assignment resets), and its process started with what the unit says.
 *
 * Applied as systemd does: User= and Group= (setpriv, with the user's groups), a clean environment (the
 * manager's PATH, USER, LOGNAME, HOME, SHELL, STATE_DIRECTORY, then Environment=, then EnvironmentFile=),
 * WorkingDirectory=, UMask=, StateDirectory= (created, owned by the user, StateDirectoryMode=),
 * NoNewPrivileges= and an empty CapabilityBoundingSet= (setpriv), and in a private mount namespace
 * ProtectSystem=strict (the root read-only, the state folder writable), PrivateTmp= (a tmpfs on /tmp) and
 * ProtectProc=invisible (a /proc with hidepid=invisible). Not applied: the seccomp filter
 * (SystemCallFilter=), PrivateUsers=, PrivateDevices=, IPAddressDeny=, RestrictAddressFamilies= and the
 * kernel protections; they need systemd itself.
 *
 * The state folder (/var/lib/NAME) is a bind mount of a folder the caller chooses, so the caller sees what
 * the service wrote there, and nothing of the machine's /var/lib is touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type Unit = Map<string, Map<string, string[]>>;

/** systemd.syntax(7), as far as unit files of this project use it. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]!) ?? new Map<string, string[]>();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 1) throw new Error(`unit file line ${i + 1}: not a Key=value in a section: ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section.set(key, value === '' ? [] : [...(section.get(key) ?? []), value]);
  }
  return unit;
}

/** The last value of a setting, as systemd reads single-valued settings. */
export function setting(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** Words as systemd splits them (double and single quotes, backslash escapes); `$` and `%` are refused. */
export function splitWords(value: string): string[] {
  if (/[$%]/.test(value)) throw new Error(`variables and specifiers are not expanded here: ${value}`);
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else word = (word ?? '') + (c === '\\' ? (value[++i] ?? '') : c);
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + (c === '\\' ? (value[++i] ?? '') : c);
  }
  if (quote) throw new Error(`unterminated quote: ${value}`);
  if (word !== undefined) words.push(word);
  return words;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export function passwdEntry(name: string): PasswdEntry | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  const f = r.stdout.trim().split(':');
  if (r.status !== 0 || f.length < 7) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
}

/** The PATH systemd 252 gives services (merged /usr, as on Debian 12). */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

export interface Started {
  child: ChildProcess;
  argv: string[];
  env: Record<string, string>;
}

/** Where the package is installed (`prefix`, as ExecStart names it) and the folder that stands in for it. */
export interface Install {
  prefix: string;
  source: string;
  /** An empty folder of the caller's, where `source` is bound before the prefix's parent is covered. */
  stage: string;
}

/**
 * Starts the unit's ExecStart as written. `install.source` (this checkout) is bound at `install.prefix`
 * in the private mount namespace, on a tmpfs over the prefix's parent, so the machine's folders are not
 * touched and the checkout is reachable wherever it lies, /tmp included (which PrivateTmp= covers);
 * `environmentFile` is the content of its EnvironmentFile= (the operator's, not read from the machine);
 * `stateRoot` stands in for /var/lib.
 */
export function startService(unit: Unit, opts: { install: Install; environmentFile: Record<string, string>; stateRoot: string }): Started {
  const s = (key: string): string | undefined => setting(unit, 'Service', key);
  const user = passwdEntry(s('User') ?? 'root');
  if (!user) throw new Error(`User=${s('User') ?? ''}: no such user`);
  const stateDirs = (s('StateDirectory') ?? '').split(/\s+/).filter(Boolean);
  const argv = splitWords(s('ExecStart') ?? '');
  const env: Record<string, string> = {
    PATH: SYSTEMD_PATH,
    USER: user.name,
    LOGNAME: user.name,
    HOME: user.home,
    SHELL: user.shell,
    ...(stateDirs.length ? { STATE_DIRECTORY: stateDirs.map((d) => `/var/lib/${d}`).join(':') } : {}),
  };
  for (const assignment of (unit.get('Service')?.get('Environment') ?? []).flatMap(splitWords)) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  Object.assign(env, opts.environmentFile);

  const group = s('Group') ?? String(user.gid);
  const gid = /^\d+$/.test(group) ? Number(group) : Number(spawnSync('getent', ['group', group], { encoding: 'utf8' }).stdout.split(':')[2]);
  const mode = parseInt(s('StateDirectoryMode') ?? '0755', 8);
  for (const d of stateDirs) {
    const dir = path.join(opts.stateRoot, d);
    fs.mkdirSync(dir, { recursive: true });
    fs.chownSync(dir, user.uid, gid);
    fs.chmodSync(dir, mode);
  }
  const yes = (key: string): boolean => ['yes', 'true', 'on', '1'].includes(s(key) ?? '');
  const privs = ['--reuid', String(user.uid), '--regid', String(gid), '--init-groups'];
  if (yes('NoNewPrivileges')) privs.push('--no-new-privs');
  if (unit.get('Service')?.get('CapabilityBoundingSet')?.length === 0) privs.push('--inh-caps=-all', '--bounding-set=-all');
  // The sandbox, in the order systemd builds it: the writable folders first, then the root read-only.
  const script = [
    'set -e',
    'mount --bind "$2" "$3"', // the checkout, staged before its own folder might be covered below
    'mount -t tmpfs -o mode=0755 tmpfs "$(dirname "$4")"',
    'mkdir -p "$4"',
    'mount --bind "$3" "$4"',
    'mount --bind "$1" /var/lib',
    'shift 4',
    yes('PrivateTmp') ? 'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp' : '',
    s('ProtectProc') === 'invisible' ? 'mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc' : '',
    s('ProtectSystem') === 'strict' ? 'mount -o remount,bind,ro /' : '',
    `cd "${s('WorkingDirectory') ?? user.home}"`,
    `umask ${s('UMask') ?? '0022'}`,
    'exec setpriv "$@"',
  ]
    .filter(Boolean)
    .join('\n');
  const child = spawn(
    '/usr/bin/unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      script,
      'sh',
      opts.stateRoot,
      opts.install.source,
      opts.install.stage,
      opts.install.prefix,
      ...privs,
      '--',
      ...argv,
    ],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return { child, argv, env };
}
