// Files kept by another node: on a member of a cluster whose files the serving node keeps
// (CloudOptions::files_endpoint), cloud.files_at names that node, and every file command and
// the upload stream fail not_allowed saying where to go. A client connects there and resumes
// its session with its token (docs/cloud.md, "On a cluster").
#pragma once

#include <string>

#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

void add_files_elsewhere(Commands& commands, const std::string& endpoint,
                         const std::string& public_key);

// cloud.files_at's answer: {"here": true}, or {"here": false, "endpoint", "public_key"}.
DataFrame files_at(bool here, const std::string& endpoint = {}, const std::string& public_key = {});

}  // namespace hawser::cloud::detail
