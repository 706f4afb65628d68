// ChannelTable: which of this node's connections are in which channel, and which channels'
// interest (this node has a subscriber, or no longer has one) changed since it was last taken,
// so that a storm of subscribes and unsubscribes reaches NATS as one batch of net changes.
// Ownership: a value owned by the Cluster. Thread affinity: none; the Cluster guards it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hawser/connection.hpp"

namespace hawser::detail {

class ChannelTable {
  public:
    enum class Added { yes, already, over_limit };
    Added subscribe(ConnectionId id, std::string_view channel, std::size_t max_per_connection);
    bool unsubscribe(ConnectionId id, std::string_view channel);  // false if it was not in it
    void remove(ConnectionId id);                                 // from every channel
    std::vector<ConnectionId> subscribers(std::string_view channel) const;
    std::vector<std::string> channels_of(ConnectionId id) const;
    bool has(std::string_view channel) const { return members_.contains(std::string(channel)); }

    // Channels whose first subscriber came or whose last left since the last call, with
    // whether this node now wants them; a channel that went and came back is in it once.
    struct Interest {
        std::string channel;
        bool wanted;
    };
    std::vector<Interest> take_changes();
    // Looks at a channel's interest again in the next batch (applying it failed).
    void retry(std::string_view channel) { dirty_.emplace(channel); }
    bool changed() const noexcept { return !dirty_.empty(); }

  private:
    std::unordered_map<std::string, std::unordered_set<ConnectionId>> members_;
    std::unordered_map<ConnectionId, std::vector<std::string>> by_connection_;
    std::unordered_set<std::string> dirty_;
};

}  // namespace hawser::detail
