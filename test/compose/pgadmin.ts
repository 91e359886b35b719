/**
 * pgAdmin as a user meets it: the login page, the login, the server registered from
 * pgadmin/servers.json in the tree, and a connection to it with the database password.
 */
import { PGADMIN } from './deployment.js';

interface Node {
  _id: string;
  label: string;
  host?: string;
  db?: string;
  connected?: boolean;
}

/** A browser's session with pgAdmin: its cookies and CSRF token. */
class Session {
  private cookies = new Map<string, string>();
  private csrf = '';

  async request(pathname: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    if (this.csrf) headers.set('X-pgA-CSRFToken', this.csrf);
    const res = await fetch(`${PGADMIN.url}${pathname}`, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  }

  async login(): Promise<void> {
    const page = await (await this.request('/login')).text();
    const token = /"csrfToken": "([^"]+)"/.exec(page)?.[1];
    if (!token) throw new Error('pgAdmin: no CSRF token on the login page');
    this.csrf = token;
    const form = new URLSearchParams({ csrf_token: token, email: PGADMIN.email, password: PGADMIN.password, language: 'en', internal_button: 'Login' });
    const res = await this.request('/authenticate/login', { method: 'POST', body: form });
    if (res.status !== 302 || !res.headers.get('location')?.includes('/browser')) throw new Error(`pgAdmin: login answered ${res.status}`);
  }

  async nodes(pathname: string): Promise<Node[]> {
    const res = await this.request(pathname);
    const body = (await res.json()) as { data?: Node[] | null; result?: Node[] | null };
    return body.data ?? body.result ?? [];
  }
}

export interface RegisteredServer {
  group: string;
  name: string;
  host: string | undefined;
  db: string | undefined;
  /** pgAdmin reached PostgreSQL with the password a user types. */
  connected: boolean;
}

/** Logs in, finds the server registered on first start, and connects to it through pgAdmin. */
export async function registeredServer(password: string): Promise<RegisteredServer | undefined> {
  const s = new Session();
  await s.login();
  for (const group of await s.nodes('/browser/server_group/nodes/')) {
    for (const server of await s.nodes(`/browser/server/nodes/${group._id}/`)) {
      const res = await s.request(`/browser/server/connect/${group._id}/${server._id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ password }),
      });
      const body = (await res.json()) as { success?: number; data?: { connected?: boolean } };
      return { group: group.label, name: server.label, host: server.host, db: server.db, connected: body.success === 1 && body.data?.connected === true };
    }
  }
  return undefined;
}
