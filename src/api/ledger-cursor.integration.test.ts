import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, type TestLedger } from '../../test/helpers/ledger.ts';
import { offendingPaths, purchase, registerMember } from '../../test/helpers/api.ts';

/**
 * Ledger cursors a client edited or carried over from another member (CONTRACT.md: GET
 * /members/{memberId}/ledger pages with `cursor`/`nextCursor`; every 400 is `validation-failed` naming
 * the offending field). A cursor the server never issued must not answer an empty last page: the client
 * would conclude it had read the whole ledger.
 */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
const store = 'store-1';
let longMember = '';
let shortMember = '';

interface Page {
  entries: { entryId: string }[];
  nextCursor: string | null;
}

function ledgerUrl(memberId: string, query: string): string {
  return `/v1/members/${memberId}/ledger?${query}`;
}

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  longMember = await registerMember(ledger, pos, store);
  for (let i = 0; i < 6; i++) await purchase(ledger, pos, longMember, store, 1_000 * (i + 1));
  shortMember = await registerMember(ledger, pos, store);
  await purchase(ledger, pos, shortMember, store, 5_000);
});
afterAll(async () => ledger.close());

describe('GET /v1/members/{memberId}/ledger with a cursor the server did not issue', () => {
  it('refuses a well-formed cursor past the end of the stream with 400 naming querystring.cursor', async () => {
    for (const version of [8, 1_000, 999_999_999]) {
      const cursor = Buffer.from(`v1:${version}`).toString('base64url');
      const response = await get(ledger.app, pos, ledgerUrl(longMember, `cursor=${cursor}`));
      expect(offendingPaths(response), `v1:${version}`).toEqual(['querystring.cursor']);
    }
  });

  it("refuses another member's cursor that points past this member's last event", async () => {
    const first = await get(ledger.app, pos, ledgerUrl(longMember, 'limit=5'));
    expect(first.statusCode, first.body).toBe(200);
    const page = first.json() as Page;
    expect(page.entries).toHaveLength(5);
    expect(page.nextCursor).not.toBeNull();
    const foreign = await get(ledger.app, pos, ledgerUrl(shortMember, `cursor=${page.nextCursor}`));
    expect(offendingPaths(foreign)).toEqual(['querystring.cursor']);
  });

  it('still serves every cursor it issued, up to and including the last event', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `limit=1${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await get(ledger.app, pos, ledgerUrl(longMember, query));
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as Page;
      seen.push(...page.entries.map((entry) => entry.entryId));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
    // A cursor at the member's last event (register + 6 purchases = version 7) is a valid, empty last page.
    const atEnd = Buffer.from('v1:7').toString('base64url');
    const last = await get(ledger.app, pos, ledgerUrl(longMember, `cursor=${atEnd}`));
    expect(last.statusCode, last.body).toBe(200);
    expect(last.json()).toEqual({ entries: [], nextCursor: null });
  });
});
