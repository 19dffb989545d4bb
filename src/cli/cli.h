/* Administration commands that work on the identity store directly:
 * `mcpgate users`, `clients`, `tokens` and `service-accounts`. They open the
 * store named by the configuration file, so they work while the gateway
 * runs; revocations reach running gateways through the store's revocation
 * counter (within a second; at once with PostgreSQL's NOTIFY). */
#ifndef MG_CLI_CLI_H
#define MG_CLI_CLI_H

/* argv[0] is the command ("users", ...). Returns the process exit status:
 * 0 success, 1 failure, 2 usage error. */
int mg_cli_admin(int argc, char **argv);

/* `mcpgate audit query|verify` (src/cli/audit.c): reads the decision trail
 * from the audit sink the configuration names (file or store), or from
 * --file. argv[0] is "audit". Returns 0, 1 (failure; verify: the chain is
 * broken) or 2 (usage). */
int mg_cli_audit(int argc, char **argv);

/* `mcpgate policy test|lint` (src/cli/policy.c): a request decided as the
 * gateway would, without running it; warnings about the configuration's
 * policies. argv[0] is "policy". Returns 0 (allowed; no findings), 1
 * (refused; findings) or 2 (usage, configuration or input errors). */
int mg_cli_policy(int argc, char **argv);

#endif
