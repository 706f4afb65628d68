// ChannelTable (see channel_table.hpp).
#include "cluster/channel_table.hpp"

#include <algorithm>

namespace hawser::detail {

ChannelTable::Added ChannelTable::subscribe(ConnectionId id, std::string_view channel,
                                            std::size_t max_per_connection) {
    auto& mine = by_connection_[id];
    if (std::find(mine.begin(), mine.end(), channel) != mine.end()) return Added::already;
    if (mine.size() >= max_per_connection) {
        if (mine.empty()) by_connection_.erase(id);
        return Added::over_limit;
    }
    mine.emplace_back(channel);
    auto& members = members_[std::string(channel)];
    members.insert(id);
    if (members.size() == 1) dirty_.emplace(channel);
    return Added::yes;
}

bool ChannelTable::unsubscribe(ConnectionId id, std::string_view channel) {
    auto mine = by_connection_.find(id);
    if (mine == by_connection_.end()) return false;
    auto it = std::find(mine->second.begin(), mine->second.end(), channel);
    if (it == mine->second.end()) return false;
    mine->second.erase(it);
    if (mine->second.empty()) by_connection_.erase(mine);
    auto members = members_.find(std::string(channel));
    members->second.erase(id);
    if (members->second.empty()) {
        members_.erase(members);
        dirty_.emplace(channel);
    }
    return true;
}

void ChannelTable::remove(ConnectionId id) {
    auto mine = by_connection_.find(id);
    if (mine == by_connection_.end()) return;
    auto channels = std::move(mine->second);
    by_connection_.erase(mine);
    for (auto& channel : channels) {
        auto members = members_.find(channel);
        members->second.erase(id);
        if (members->second.empty()) {
            members_.erase(members);
            dirty_.insert(std::move(channel));
        }
    }
}

std::vector<ConnectionId> ChannelTable::subscribers(std::string_view channel) const {
    auto it = members_.find(std::string(channel));
    if (it == members_.end()) return {};
    return {it->second.begin(), it->second.end()};
}

std::vector<std::string> ChannelTable::channels_of(ConnectionId id) const {
    auto it = by_connection_.find(id);
    return it == by_connection_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<ChannelTable::Interest> ChannelTable::take_changes() {
    std::vector<Interest> out;
    out.reserve(dirty_.size());
    for (auto& channel : dirty_) {
        bool wanted = members_.contains(channel);
        out.push_back({channel, wanted});
    }
    dirty_.clear();
    return out;
}

}  // namespace hawser::detail
