// The glasnode subcommands. Each returns the process exit status: 0 success, 1 failure at run
// time (message on stderr), 2 bad usage or configuration.
#pragma once

#include <string>

#include "node/settings.hpp"

namespace glasnode::node {

int cmd_keygen(const settings& s);
int cmd_status(const settings& s, bool json);
int cmd_run(const settings& s);
int cmd_config(const settings& s, bool markdown, bool effective);
// Opens an authenticated control channel to `target` ("HOST:PORT") and sends `count` pings.
// `peer_id` (hex), when given, must match the key the peer authenticates with.
int cmd_ping(const settings& s, const std::string& target, unsigned count,
             const std::string& peer_id);

} // namespace glasnode::node
