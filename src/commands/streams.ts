/** Stream ids inside a tenant's log. The tenant itself is one stream; each member is one stream. */
export const TENANT_STREAM_ID = 'tenant';

export function memberStreamId(memberId: string): string {
  return `member-${memberId}`;
}

export function memberIdOfStream(streamId: string): string | null {
  return streamId.startsWith('member-') ? streamId.slice('member-'.length) : null;
}
