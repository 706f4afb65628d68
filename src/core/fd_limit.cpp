#include <sys/resource.h>

#include "hawser/runtime.hpp"

namespace hawser {

std::size_t raise_file_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    return static_cast<std::size_t>(rl.rlim_cur);
}

}  // namespace hawser
