import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, partitionHash, streamHash } from './hash.ts';

/**
 * Hashes already stored must verify forever (DESIGN.md invariant 6): the bytes hashed and their encoding
 * may never change, whatever the implementation. These values were computed with
 * createHash('sha256').update(previous).update('\n').update(content), the first implementation.
 */
describe('hash chains keep their bytes', () => {
  const event = {
    tenantId: 'acme',
    streamId: 'member-m1',
    streamVersion: 2,
    eventId: '6f1c0d52-8b7e-5a53-9a6e-2b6f0c6d7e11',
    type: 'PointsRedeemed',
    // Non-ASCII text: the content is hashed as UTF-8.
    dataJson: '{"points":5,"note":"ü €"}',
    metadataJson: '{"tenantId":"acme"}',
  };

  it('streamHash of a known event', () => {
    expect(streamHash(GENESIS_HASH, event)).toBe(
      'e8a30ddc2076986e1060edd95c308c28f09a72b52ae389cb40a8e1bd3b847b53',
    );
  });

  it('partitionHash of a known link', () => {
    expect(
      partitionHash(GENESIS_HASH, 3, 17, 'e8a30ddc2076986e1060edd95c308c28f09a72b52ae389cb40a8e1bd3b847b53'),
    ).toBe('0364f34465d3c529e26fd3ccf10b472e38a32ba79190b5c9678585b30368d09f');
  });
});
