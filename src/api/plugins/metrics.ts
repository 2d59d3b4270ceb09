import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process's Prometheus metrics. One registry per process (tests build several servers, each its own). */
export class Metrics {
  readonly registry = new Registry();
  readonly requestDuration = new Histogram({
    name: 'ledger_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly commandOutcomes = new Counter({
    name: 'ledger_command_outcomes_total',
    help: 'Commands by route and outcome code (ok, replayed, deadline, or the problem code)',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly projectionLag = new Gauge({
    name: 'ledger_projection_lag_events',
    help: 'Events in the log not yet applied to the read models, per tenant and partition',
    labelNames: ['tenant', 'partition'] as const,
    registers: [this.registry],
  });

  readonly appendBatchRequests = new Histogram({
    name: 'ledger_append_batch_requests',
    help: 'Appends gathered into one event-store transaction (SQL store)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly appendTransactionDuration = new Histogram({
    name: 'ledger_append_transaction_duration_seconds',
    help: 'One event-store append transaction, connection wait to COMMIT, by its round trips: 1 on heads the process knew, 2 locking (SQL store)',
    labelNames: ['round_trips'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
