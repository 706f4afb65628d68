// The live dashboard's files (apps/hawser-server/dashboard and uPlot), built into the binary so
// that the page needs nothing from the internet or the disk: the admin listener serves them.
#pragma once

#include <string_view>
#include <vector>

namespace hawser::app {

struct DashboardAsset {
    std::string_view path;  // "/" for the page
    std::string_view content_type;
    std::string_view body;
};

std::vector<DashboardAsset> dashboard_assets();

}  // namespace hawser::app
