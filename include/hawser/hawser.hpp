// Everything a Hawser application needs.
#pragma once

#include "hawser/client.hpp"
#include "hawser/client_group.hpp"
#include "hawser/commands.hpp"
#include "hawser/completion.hpp"
#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/files.hpp"
#include "hawser/options.hpp"
#include "hawser/relative_path.hpp"
#include "hawser/runtime.hpp"
#include "hawser/server.hpp"
#include "hawser/stats.hpp"
#include "hawser/streams.hpp"
#include "hawser/task.hpp"
