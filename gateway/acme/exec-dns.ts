// The `exec` DNS provider (lego's): publishes DNS-01 records by running a command of the
// user's, `<command> present <fqdn> <value>` and `<command> cleanup <fqdn> <value>`, e.g.
// a script calling the DNS host's API. A non-zero exit (or no exit within timeoutMs) is
// a failure whose message carries the command's stderr.

import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { def, filePath, integer, object, req } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";

function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL" },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        const why = err.killed
          ? `did not finish within ${timeoutMs} ms`
          : `failed (${err.code ?? err.message})`;
        const detail = stderr.trim().slice(0, 500);
        reject(
          new Error(
            `DNS provider ${command} ${args[0]} ${args[1]} ${why}${detail ? `: ${detail}` : ""}`,
          ),
        );
      },
    );
  });
}

export const execDnsProvider = definePlugin({
  category: "dnsProvider",
  kind: "exec",
  schema: object({
    /** The program to run (a path; it gets no shell). */
    command: req(filePath("an executable")),
    timeoutMs: def(integer({ min: 100 }), 60_000),
    /** How long to wait after `present` before the CA is asked to look (DNS propagation). */
    propagationDelayMs: def(integer({ min: 0 }), 0),
  }),
  validate(config) {
    try {
      accessSync(config.command, constants.X_OK);
      return [];
    } catch (e) {
      return [
        {
          field: "command",
          message: `${config.command} is not an executable file (${(e as NodeJS.ErrnoException).code})`,
        },
      ];
    }
  },
  create(config) {
    return {
      description: `exec ${config.command}`,
      propagationDelayMs: config.propagationDelayMs,
      present: (fqdn, value) => run(config.command, ["present", fqdn, value], config.timeoutMs),
      cleanup: (fqdn, value) => run(config.command, ["cleanup", fqdn, value], config.timeoutMs),
    };
  },
});
