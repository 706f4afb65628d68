// A worker process: holds up to --per-worker connections and runs the phases the coordinator
// sends (worker.cpp). Forked by the coordinator before it starts any thread.
#pragma once

namespace hawser::bench {

// Serves commands on `control_fd` until told to exit or the coordinator is gone; the exit code.
int run_worker(int control_fd);

}  // namespace hawser::bench
