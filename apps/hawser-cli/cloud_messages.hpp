// hawser-cli's cloud message commands (docs/cloud.md, "Messages"): message (send one), inbox
// (print what waits, then acknowledge it), listen (print what waits and what arrives, until a
// count), who (who of some users is online), follow (who is online now, then each change;
// docs/cloud.md, "Presence"). Blocking, on the main thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "hawser/hawser.hpp"

namespace hawser::app {

struct MessageCommand {
    std::string verb;                // message, inbox, listen, who, follow
    std::vector<std::string> words;  // message: NAME TEXT; who, follow: NAMES
    std::size_t count = 0;           // listen, follow: stop after this many (0: never)
    bool keep = false;               // inbox, listen: do not acknowledge
};

// Registers, before connect, the handlers that receive pushed messages and presence changes
// (for listen and follow).
void prepare_listen(Commands& commands);
// The connection closed: a listen waiting for messages gives up.
void wake_listener();
int run_message_command(const Connection& conn, const MessageCommand& command,
                        std::chrono::milliseconds timeout);

}  // namespace hawser::app
