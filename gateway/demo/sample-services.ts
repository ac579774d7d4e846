// The demo's sample application (the book's example): `user` answers
// GET /users/{id}/bookings by calling `booking` and `concert` through lintel itself,
// and `welcome` lists what to try. Started by `lintel demo` next to configs/demo.yaml.

import { createServer, request, type Server } from "node:http";

export interface SampleServices {
  close(): Promise<void>;
}

interface Booking {
  readonly id: string;
  readonly user: string;
  readonly concertId: string;
}

const BOOKINGS: Booking[] = [
  { id: "b-1", user: "tom", concertId: "c-1" },
  { id: "b-2", user: "tom", concertId: "c-2" },
  { id: "b-3", user: "ann", concertId: "c-1" },
];
const CONCERTS: Record<string, { id: string; name: string; venue: string }> = {
  "c-1": { id: "c-1", name: "The Dtab Quartet", venue: "Hall 1" },
  "c-2": { id: "c-2", name: "Namers in Concert", venue: "Hall 2" },
};

function json(res: import("node:http").ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** GET through lintel: the Host header names the service, as an application would. */
function viaLintel(
  proxy: { host: string; port: number },
  service: string,
  path: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: proxy.host, port: proxy.port, path, headers: { host: service } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200)
            reject(new Error(`${service}${path}: ${res.statusCode} ${text.trim()}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `the demo's sample service cannot listen on 127.0.0.1:${port}: ${e.code ?? e.message}`,
        ),
      ),
    );
    server.listen(port, "127.0.0.1", () => resolve());
  });
}

export interface SamplePorts {
  readonly welcome: number;
  readonly user: number;
  readonly booking: number;
  readonly concert: number;
}

export async function startSampleServices(
  ports: SamplePorts,
  proxy: { host: string; port: number },
  welcomeText: string,
): Promise<SampleServices> {
  const servers: Server[] = [];
  const welcome = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(welcomeText);
  });
  const booking = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://booking");
    if (url.pathname !== "/bookings")
      return json(res, 404, { error: `no such resource ${url.pathname}` });
    const user = url.searchParams.get("user");
    json(
      res,
      200,
      BOOKINGS.filter((b) => user === null || b.user === user),
    );
  });
  const concert = createServer((req, res) => {
    const m = /^\/concerts\/([^/]+)$/.exec(req.url ?? "");
    const c = m ? CONCERTS[m[1]!] : undefined;
    if (!c) return json(res, 404, { error: `no such concert ${req.url}` });
    json(res, 200, c);
  });
  const user = createServer((req, res) => {
    const m = /^\/users\/([^/]+)\/bookings$/.exec(req.url ?? "");
    if (!m) return json(res, 404, { error: "try /users/tom/bookings" });
    const id = m[1]!;
    viaLintel(proxy, "booking", `/bookings?user=${encodeURIComponent(id)}`)
      .then(async (bookings) => {
        const withConcerts = await Promise.all(
          (bookings as Booking[]).map(async (b) => ({
            ...b,
            concert: await viaLintel(proxy, "concert", `/concerts/${b.concertId}`),
          })),
        );
        json(res, 200, { user: id, bookings: withConcerts });
      })
      .catch((e: Error) => json(res, 502, { error: e.message }));
  });
  try {
    for (const [server, port] of [
      [welcome, ports.welcome],
      [user, ports.user],
      [booking, ports.booking],
      [concert, ports.concert],
    ] as const) {
      await listen(server, port);
      servers.push(server);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return {
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((r) => {
              s.close(() => r());
              s.closeAllConnections();
            }),
        ),
      ).then(() => {}),
  };
}
