import http from 'node:http';

/** What one HTTP attempt came to: an answer, or no answer (the outcome of the command is then unknown). */
export type Attempt =
  | { kind: 'answer'; status: number; body: unknown; replayed: boolean }
  | { kind: 'no-answer'; reason: 'timeout' | 'connection'; detail: string };

/** A till's connection to the API: one keep-alive socket, a deadline per request, no hidden retries. */
export class TillConnection {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly port: number) {}

  request(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body: unknown,
    timeoutMs: number,
  ): Promise<Attempt> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const settle = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(attempt);
      };
      const request = http.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: {
            ...headers,
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) =>
            settle({ kind: 'no-answer', reason: 'connection', detail: error.message }),
          );
          response.on('aborted', () =>
            settle({ kind: 'no-answer', reason: 'connection', detail: 'response aborted' }),
          );
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // A cut in the middle of a body: treat as no answer, the outcome is unknown.
              settle({ kind: 'no-answer', reason: 'connection', detail: 'truncated body' });
              return;
            }
            settle({
              kind: 'answer',
              status: response.statusCode ?? 0,
              body: parsed,
              replayed: response.headers['idempotent-replayed'] === 'true',
            });
          });
        },
      );
      const timer = setTimeout(() => {
        settle({ kind: 'no-answer', reason: 'timeout', detail: `no answer within ${timeoutMs} ms` });
        request.destroy();
      }, timeoutMs);
      request.on('error', (error) =>
        settle({ kind: 'no-answer', reason: 'connection', detail: error.message }),
      );
      if (payload !== undefined) request.write(payload);
      request.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
