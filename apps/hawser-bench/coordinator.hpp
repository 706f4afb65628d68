// The coordinator: checks the machine, forks the workers, starts the servers, runs the phases
// in step on every worker (Hawser, then the raw baseline), shows progress and writes the report.
// Thread affinity: the main thread; it forks before anything starts a thread.
#pragma once

#include "plan.hpp"

namespace hawser::bench {

// The process's exit code: 0 when every phase ran (failures are in the report), 2 for a plan
// this machine cannot run (with what to change), 1 when servers or workers failed.
int run_coordinator(const Plan& plan);

}  // namespace hawser::bench
