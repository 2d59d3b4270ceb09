import { replayMember } from '../../audit/member-replay.ts';
import { memberStreamId } from '../../commands/streams.ts';
import { heldPoints } from '../../domain/member/state.ts';
import { StreamChainVerifier } from '../../eventstore/verify.ts';
import { openRuntime } from '../../runtime.ts';
import { noPositionals, onlyOptions, parseArgs, requiredOption, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

/**
 * `ledger replay --tenant T --member M`: the member's whole history from the events, one line per event:
 * version, recording time, type, the movements it made, the running balance, held and available (holds
 * active at that moment), and the open lots after it, lot by lot (lotId remaining/points until expiry),
 * in consumption order. The stream's hash chain is verified on the way; the last line says whether it held.
 * The fold is the one GET /v1/members/{id}/balance?asOf= answers from (src/audit/member-replay.ts).
 */
export const replay: Verb = {
  usage: 'replay --tenant T --member M',
  summary: "a member's full history from the events, with the running balance and the lots after each event",
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, ['tenant', 'member']);
    noPositionals(args);
    const tenantId = requiredOption(args, 'tenant');
    const memberId = requiredOption(args, 'member');
    const runtime = await openRuntime(config);
    try {
      if ((await runtime.tenants.get(tenantId)) === null)
        throw new UsageError(`tenant ${tenantId} does not exist`);
      const streamId = memberStreamId(memberId);
      const verifier = new StreamChainVerifier(tenantId, streamId);
      const out: string[] = [];
      const flush = () => {
        if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
        out.length = 0;
      };
      let failure: string | null = null;
      try {
        const result = await replayMember(runtime.store, tenantId, memberId, {
          onStep: ({ recorded, event, state, movements }) => {
            verifier.add(recorded);
            if (!state.registered) return;
            const held = heldPoints(state, event.data.at);
            const moved =
              movements.length === 0
                ? '-'
                : movements.map((m) => `${m.kind} ${m.points > 0 ? '+' : ''}${m.points}`).join(', ');
            const lots =
              state.lots.length === 0
                ? 'none'
                : state.lots
                    .map((lot) => `${lot.lotId} ${lot.remaining}/${lot.points} until ${lot.expiresAt}`)
                    .join('; ');
            out.push(
              `v${recorded.streamVersion} ${event.data.at} ${recorded.type}: ${moved} | balance ${state.balance} held ${held} available ${state.balance - held} | lots: ${lots}`,
            );
            if (out.length >= 200) flush();
          },
        });
        flush();
        if (result.version === 0) {
          process.stderr.write(`ledger: member ${memberId} has no events in tenant ${tenantId}\n`);
          return 1;
        }
      } catch (error) {
        flush();
        failure = error instanceof Error ? error.message : String(error);
      }
      const head = await runtime.store.streamHead(tenantId, streamId);
      const problems = verifier.finish(
        head === null ? undefined : { version: head.version, lastHash: head.lastHash },
      );
      for (const problem of problems)
        process.stdout.write(
          `chain: ${problem.kind} at version ${problem.streamVersion ?? '?'}: ${problem.detail}\n`,
        );
      if (failure !== null) process.stdout.write(`replay stopped: ${failure}\n`);
      if (problems.length === 0 && failure === null)
        process.stdout.write(`hash chain verified to version ${head?.version ?? 0}\n`);
      return problems.length === 0 && failure === null ? 0 : 1;
    } finally {
      await runtime.close();
    }
  },
};
