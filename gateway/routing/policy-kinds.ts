// Instances of the policy kinds a router's client and service blocks name (load
// balancer, failure accrual, backoff, response classifier), each made once per decoded
// block so every client or service the block covers shares it, and Linkerd's defaults
// where a block names none.

import type { FailureAccrualPolicy } from "../client/accrual/accrual.js";
import { consecutiveFailures } from "../client/accrual/kinds.js";
import type { LoadBalancerFactory } from "../client/balancers/balancer.js";
import { p2cBalancer } from "../client/balancers/p2c.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import { DecodeContext, INVALID } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { AnyPlugin, Category } from "../plugins/registry.js";
import type { PluginContext, PluginInstances } from "../plugins/types.js";
import type { Backoff } from "../policy/backoff.js";
import { constantBackoff, DEFAULT_ACCRUAL_BACKOFF } from "../policy/backoffs.js";
import type { ResponseClassifier } from "../policy/classifier.js";
import { DEFAULT_CLASSIFIER } from "../policy/classifiers.js";

/** A kind's config with every field at its default (the kind named without settings). */
function defaults(plugin: AnyPlugin): unknown {
  const decoded = plugin.schema.decode({}, "", new DecodeContext(""));
  if (decoded === INVALID) throw new Error(`${plugin.kind} has required fields: no default`);
  return decoded;
}

export class PolicyKinds {
  private readonly made = new WeakMap<PluginConfig, unknown>();
  private readonly defaultBalancer: LoadBalancerFactory;
  private readonly defaultAccrual: FailureAccrualPolicy;
  /** Linkerd's retries back off by nothing unless the service block says so. */
  private readonly defaultRetryBackoff: Backoff;

  constructor(private readonly ctx: Omit<PluginContext, "log"> & { readonly log: Logger }) {
    this.defaultBalancer = p2cBalancer.create(defaults(p2cBalancer) as never, ctx);
    this.defaultAccrual = consecutiveFailures.create(defaults(consecutiveFailures) as never, {
      ...ctx,
      backoff: DEFAULT_ACCRUAL_BACKOFF(ctx.random),
    });
    this.defaultRetryBackoff = constantBackoff.create({ ms: 0 }, ctx);
  }

  balancer(pc: PluginConfig<"loadBalancer"> | undefined): LoadBalancerFactory {
    return pc ? this.instance(pc, this.ctx) : this.defaultBalancer;
  }

  /** The kinds `balancer(pc)` and `accrual(pc)` make, as the config names them. */
  kindsOf(
    balancer: PluginConfig<"loadBalancer"> | undefined,
    accrual: PluginConfig<"failureAccrual"> | undefined,
  ): { readonly balancer: string; readonly accrual: string } {
    return {
      balancer: balancer?.kind ?? p2cBalancer.kind,
      accrual: accrual?.kind ?? consecutiveFailures.kind,
    };
  }

  accrual(pc: PluginConfig<"failureAccrual"> | undefined): FailureAccrualPolicy {
    if (!pc) return this.defaultAccrual;
    return this.instance(pc, {
      ...this.ctx,
      backoff: pc.backoff
        ? this.instance(pc.backoff, this.ctx)
        : DEFAULT_ACCRUAL_BACKOFF(this.ctx.random),
    });
  }

  retryBackoff(pc: PluginConfig<"backoff"> | undefined): Backoff {
    return pc ? this.instance(pc, this.ctx) : this.defaultRetryBackoff;
  }

  classifier(pc: PluginConfig<"responseClassifier"> | undefined): ResponseClassifier {
    return pc ? this.instance(pc, this.ctx) : DEFAULT_CLASSIFIER;
  }

  private instance<C extends Category>(
    pc: PluginConfig<C>,
    ctx: Parameters<PluginConfig<C>["plugin"]["create"]>[1],
  ): PluginInstances[C] {
    let i = this.made.get(pc) as PluginInstances[C] | undefined;
    if (i === undefined) {
      i = pc.plugin.create(pc.config, ctx);
      this.made.set(pc, i);
    }
    return i;
  }
}
