/**
 * A hostile HTTP load, run as its own process so its CPU is not the engine's: clients that request a
 * path in a loop over keep-alive connections (Prometheus scrapers gone wild), and slow-header
 * connections that send one header line a second and never finish (Slowloris), reopened when the
 * server closes them. Prints one JSON line of counts when the time is up.
 *
 *   node --import tsx test/support/http-load.ts '{"seconds":20,"loops":[...],"slow":[...]}'
 */
import http from 'node:http';
import net from 'node:net';

export interface LoadPlan {
  seconds: number;
  /** `clients` concurrent request loops on `url`. */
  loops: { url: string; clients: number }[];
  /** `connections` slow-header connections to `url`'s host and port. */
  slow: { url: string; connections: number }[];
}

export interface LoopReport {
  url: string;
  /** Responses by status code. */
  statuses: Record<string, number>;
  /** Requests that failed without a response (refused, reset). */
  errors: number;
}

export interface LoadReport {
  /** One per `loops` entry of the plan, in its order. */
  loops: LoopReport[];
  slowOpened: number;
  /** Slow connections the server closed (a header timeout, or the connection cap). */
  slowClosedByServer: number;
}

function get(agent: http.Agent, report: LoopReport): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get(report.url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        report.statuses[res.statusCode ?? 0] = (report.statuses[res.statusCode ?? 0] ?? 0) + 1;
        resolve();
      });
      res.on('error', () => resolve());
    });
    req.on('error', () => {
      report.errors++;
      setTimeout(resolve, 20); // refused: do not spin
    });
  });
}

async function loop(agent: http.Agent, report: LoopReport, until: number): Promise<void> {
  while (Date.now() < until) await get(agent, report);
}

function slowConnection(url: URL, until: number, report: LoadReport): void {
  if (Date.now() >= until) return;
  const socket = net.connect(Number(url.port), url.hostname);
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    report.slowOpened++;
    socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n`);
    timer = setInterval(() => socket.write('X-Slow: 1\r\n'), 1000);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    clearInterval(timer);
    if (Date.now() < until) {
      report.slowClosedByServer++;
      setTimeout(() => slowConnection(url, until, report), 100);
    }
  });
  setTimeout(() => socket.destroy(), Math.max(0, until - Date.now())).unref();
}

async function main(plan: LoadPlan): Promise<void> {
  const until = Date.now() + plan.seconds * 1000;
  const report: LoadReport = { loops: plan.loops.map((l) => ({ url: l.url, statuses: {}, errors: 0 })), slowOpened: 0, slowClosedByServer: 0 };
  for (const s of plan.slow) for (let i = 0; i < s.connections; i++) slowConnection(new URL(s.url), until, report);
  const loops: Promise<void>[] = [];
  plan.loops.forEach((l, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: l.clients });
    for (let c = 0; c < l.clients; c++) loops.push(loop(agent, report.loops[i]!, until));
  });
  await Promise.all(loops);
  await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

void main(JSON.parse(process.argv[2] ?? '{}') as LoadPlan);
