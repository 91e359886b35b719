/**
 * What the Compose deployment's public images are, and what that implies, checked without them: the
 * stand-ins that test/compose/ builds have Debian's Python and Java, so the facts of the real images
 * (test/compose/images.json) are checked here. Every package a project Dockerfile installs into one of
 * them must resolve for that image's interpreter and platform, and the Spark job must be valid Python
 * for the oldest interpreter it runs under (the Spark image's), which is also what its tests run on.
 * The pip check asks PyPI (reachable wherever `npm install` works); vermin comes with spark/.venv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { parse } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');

interface ImageFacts {
  os: string;
  glibc?: string;
  python?: string;
  java?: string;
  node?: string;
  user: { name: string; uid: number };
  /** null: no stand-in can be built here; `noStandIn` says why. */
  standIn: string | null;
  noStandIn?: string;
}
const IMAGES = (JSON.parse(read('test/compose/images.json')) as { images: Record<string, ImageFacts> }).images;
const SPARK_IMAGE = Object.keys(IMAGES).find((k) => k.startsWith('apache/spark:')) ?? '';

/** A project Dockerfile: its base image (the first FROM) and what it installs there. */
interface Build {
  file: string;
  base: string;
  pipRequirements: string[];
  npmCi: boolean;
}

function projectBuilds(): Build[] {
  return fs
    .readdirSync(ROOT)
    .filter((f) => f.endsWith('.Dockerfile') || f === 'Dockerfile')
    .map((file) => {
      const text = read(file);
      const base = /^FROM\s+(\S+)/m.exec(text)?.[1] ?? '';
      // `COPY <repo file> <image path>` then `pip install -r <image path>`: the repo file is what pip reads.
      const copies = new Map([...text.matchAll(/^COPY\s+(\S+)\s+(\S+)$/gm)].map((m) => [m[2] ?? '', m[1] ?? '']));
      const pipRequirements = [...text.matchAll(/pip install[^\n]*?-r\s+(\S+)/g)].map((m) => copies.get(m[1] ?? '') ?? m[1] ?? '');
      return { file, base, pipRequirements, npmCi: /\bnpm ci\b/.test(text) };
    });
}

/** The platform tags a glibc this old accepts, newest first: manylinux_2_N and the legacy aliases. */
function manylinuxTags(glibc: string): string[] {
  const minor = Number(glibc.split('.')[1]);
  const tags: string[] = [];
  for (let m = minor; m >= 5; m--) tags.push(`manylinux_2_${m}_x86_64`);
  const aliases: [number, string][] = [
    [17, 'manylinux2014_x86_64'],
    [12, 'manylinux2010_x86_64'],
    [5, 'manylinux1_x86_64'],
  ];
  return [...tags, ...aliases.filter(([m]) => m <= minor).map(([, t]) => t)];
}

/** `pip download` of a requirements file as pip in an image with this Python and glibc would resolve it, wheels only. */
function pipDownload(requirements: string, python: string, glibc: string): SpawnSyncReturns<string> {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'ecomstream-pip-'));
  const target = ['--python-version', python, '--implementation', 'cp', '--abi', `cp${python.replace('.', '')}`, '--abi', 'abi3', '--abi', 'none'];
  const platforms = manylinuxTags(glibc).flatMap((p) => ['--platform', p]);
  const r = spawnSync('python3', ['-m', 'pip', 'download', '-q', '-d', dest, '--only-binary=:all:', ...target, ...platforms, '-r', requirements], {
    encoding: 'utf8',
  });
  fs.rmSync(dest, { recursive: true, force: true });
  return r;
}

test('every public image of docker-compose.yml and the Dockerfiles has its facts and a stand-in', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, { image?: string; build?: unknown }> };
  const pulled = Object.values(compose.services).flatMap((s) => (s.image && !s.build ? [s.image] : []));
  for (const name of new Set([...pulled, ...projectBuilds().map((b) => b.base)])) {
    const facts = IMAGES[name];
    assert.ok(facts, `${name} is used by docker-compose.yml or a Dockerfile but has no entry in test/compose/images.json`);
    if (facts.standIn === null) {
      assert.ok(facts.noStandIn, `${name}: without a stand-in, images.json says why (noStandIn)`);
      continue;
    }
    assert.ok(fs.existsSync(path.join(ROOT, 'test/compose', facts.standIn)), `${name}: no ${facts.standIn}`);
  }
});

test("every Python package a Dockerfile installs resolves for its image's Python and platform (pip download)", (t) => {
  for (const b of projectBuilds().filter((x) => x.pipRequirements.length > 0)) {
    const facts = IMAGES[b.base];
    assert.ok(facts?.python && facts.glibc, `${b.file}: ${b.base} needs python and glibc in test/compose/images.json`);
    const { python, glibc } = facts;
    for (const req of b.pipRequirements) {
      const r = pipDownload(path.join(ROOT, req), python, glibc);
      assert.equal(r.status, 0, `${b.file}: ${req} does not install on ${b.base} (Python ${python}, glibc ${glibc}):\n${r.stderr}`);
      t.diagnostic(`${b.file}: ${req} resolves for Python ${python}, glibc ${glibc}`);
    }
  }
});

test("every npm package a Dockerfile installs accepts its image's Node (engines)", () => {
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
  for (const b of projectBuilds().filter((x) => x.npmCi)) {
    const node = IMAGES[b.base]?.node;
    assert.ok(node, `${b.file}: ${b.base} needs node in test/compose/images.json`);
    const refused = Object.entries(lock.packages)
      .map(([name, p]) => [name, Array.isArray(p.engines) ? undefined : p.engines?.node] as const)
      .filter(([, range]) => range !== undefined && semver.validRange(range) !== null && !semver.intersects(range, `${node}.x`));
    assert.deepEqual(refused, [], `${b.file}: packages whose engines refuse Node ${node}`);
  }
});

const VERMIN = path.join(ROOT, 'spark', '.venv', 'bin', 'vermin');
/** Why vermin (spark/.venv, scripts/install-spark.sh) cannot run here; CI must have it. */
function verminMissing(): string | false {
  if (fs.existsSync(VERMIN)) return false;
  if (process.env.CI) throw new Error('no spark/.venv/bin/vermin: .ci/run runs scripts/install-spark.sh before npm test');
  return 'no spark/.venv/bin/vermin: run scripts/install-spark.sh';
}

test("the Spark job is valid Python for the Spark image's interpreter (vermin), and ruff and spark/.venv target it", { skip: verminMissing() }, () => {
  const python = IMAGES[SPARK_IMAGE]?.python ?? '';
  const run = (files: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(VERMIN, [`--target=${python}-`, '--violations', '--no-tips', '--eval-annotations', ...files], { encoding: 'utf8' });
  const job = run(['spark/ecomstream_spark', 'spark/streaming_job.py', 'spark/tests'].map((p) => path.join(ROOT, p)));
  assert.equal(job.status, 0, `the Spark job uses Python newer than ${python}:\n${String(job.stdout)}`);
  // The check is live: a construct of Python 3.9 is reported.
  const probe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ecomstream-vermin-')), 'probe.py');
  fs.writeFileSync(probe, 'print("x".removeprefix("y"))\n');
  assert.notEqual(run([probe]).status, 0, 'vermin reports str.removeprefix (Python 3.9) against 3.8');
  assert.match(read('spark/ruff.toml'), new RegExp(`^target-version = "py${python.replace('.', '')}"$`, 'm'));
  const venv = spawnSync(path.join(ROOT, 'spark', '.venv', 'bin', 'python'), ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  assert.equal(venv.stdout.trim(), python, "spark/.venv runs the Spark image's Python (scripts/install-spark.sh)");
});

/** The newest class file version in a jar (Java N reads versions up to 44 + N), read with python3's zipfile. */
function newestClassVersion(jar: string): number {
  const script = [
    'import struct, sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1])',
    "names = [n for n in z.namelist() if n.endswith('.class') and not n.startswith('META-INF/versions/')]",
    "print(max(struct.unpack('>H', z.read(n)[6:8])[0] for n in names))",
  ].join('\n');
  const r = spawnSync('python3', ['-c', script, jar], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

const JDBC_JAR = (() => {
  const version = /^PG_JDBC_VERSION="([^"]+)"/m.exec(read('scripts/install-spark.sh'))?.[1] ?? '';
  return path.join(ROOT, 'spark', 'jars', `postgresql-${version}.jar`);
})();
function jdbcMissing(): string | false {
  if (fs.existsSync(JDBC_JAR)) return false;
  if (process.env.CI) throw new Error(`no ${JDBC_JAR}: .ci/run runs scripts/install-spark.sh before npm test`);
  return `no ${path.relative(ROOT, JDBC_JAR)}: run scripts/install-spark.sh`;
}

test("the JDBC driver the job loads (--packages, same version as spark/jars) runs on the Spark image's Java", { skip: jdbcMissing() }, () => {
  const java = Number(IMAGES[SPARK_IMAGE]?.java);
  const newest = newestClassVersion(JDBC_JAR);
  assert.ok(newest <= 44 + java, `${path.basename(JDBC_JAR)} has class files of version ${newest}: Java ${newest - 44}, not ${java}`);
});
