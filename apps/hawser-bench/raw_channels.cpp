// The raw driver's channels phase (Driver::channels): subscriptions, paced or chained
// publications to every server, replacements meanwhile.
#include "raw_driver.hpp"

#include "clock.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

Json RawDriver::channels(const ChannelsPlan& plan, const Progress& progress) {
    reset();
    std::vector<int> all;
    for_each_open([&](int fd) { all.push_back(fd); });
    layout_ = {plan.worker, all.size(), std::max<std::size_t>(1, plan.group)};
    deliveries_ = {};  // progress shows these from the start
    // Paced as the Hawser driver's are: at most two per --max-opening in flight.
    auto subscribe_ns = now_ns();
    auto deadline = Clock::now() + 2 * setup_.timeout;
    for (std::size_t k = 0; k < all.size(); ++k) {
        while (in_flight_ >= 2 * setup_.max_opening && Clock::now() < deadline) {
            poll_once(50);
            report(progress, "channels");
        }
        if (peers_[std::size_t(all[k])].state != Peer::open) continue;  // closed meanwhile
        peers_[std::size_t(all[k])].channel = std::int64_t(k);
        send_subscribes(all[k]);
    }
    poll_while([&] { return in_flight_ > 0; }, progress, "channels");
    auto subscribed = figures("subscribe");  // the calls' latency
    subscribed["seconds"] = double(now_ns() - subscribe_ns) / 1e9;
    for (auto* key : {"phase", "open", "end_ns"}) subscribed.erase(key);
    reset();
    deliveries_ = {};
    // Raw servers are not a cluster: each is asked, and publishes to the subscribers it has.
    publishing_ = {
        .total = plan.rounds * layout_.per_round(), .size = plan.size, .chained = plan.rate <= 0};
    std::vector<bool> asked(targets_.size());
    for (int fd : all) {
        auto& p = peers_[std::size_t(fd)];
        // Not one whose subscriptions are still unanswered: its answers are in order.
        if (p.state != Peer::open || asked[p.endpoint] || !p.sent_us.empty()) continue;
        asked[p.endpoint] = p.publisher = true;
        publishers_.push_back({fd, {}});
    }
    // A server whose every connection still waits for answers is not asked: its subscribers'
    // share would be missing from the deliveries without a word.
    for (int fd : all) {
        auto& p = peers_[std::size_t(fd)];
        if (p.state == Peer::open && !asked[p.endpoint]) {
            asked[p.endpoint] = true;
            ++errors_["publish: no connection to ask a server on"];
        }
    }
    if (publishers_.empty()) publishing_.total = 0;
    ChannelsPace pace(plan);
    auto start_ns = now_ns();
    if (plan.rate <= 0) publish_next();
    std::size_t churned = 0;
    last_answer_ = Clock::now();
    while (!publishing_.over()) {
        if (publishing_.in_flight > 0 && Clock::now() - last_answer_ > setup_.timeout) {
            // A server stopped answering: its connection is closed, which settles what it owed.
            ++errors_["publish: no answer within the timeout"];
            for (auto publisher : std::vector<Publisher>(publishers_))
                if (!publisher.waiting.empty()) close_fd(publisher.fd, false);
            continue;
        }
        poll_until(pace.wake(), progress, "channels");
        if (plan.rate > 0) publish_next(pace.publications_due());
        for (auto n = pace.replacements_due(); n > 0; --n)
            if (auto victim = close_oldest()) {
                open_one(victim->first, victim->second);
                ++churned;
            }
    }
    const auto expected = publishing_.reach;
    Settling settling(setup_.timeout);
    poll_while([&] { return !settling.over(deliveries_.count, expected); }, progress, "channels");
    poll_while([&] { return opening_ > 0 || in_flight_ > 0; }, progress, "channels");
    auto out = figures("channels");
    deliveries_.report(out);
    publishing_.report(out, layout_);
    out["subscribe"] = subscribed;
    out["start_ns"] = start_ns;
    out["expected"] = expected;
    out["churned"] = churned;
    for_each_open([&](int fd) {
        peers_[std::size_t(fd)].channel = -1;
        peers_[std::size_t(fd)].publisher = false;
    });
    publishers_.clear();
    slices_.clear();
    publishing_ = {};
    return out;
}

void RawDriver::send_subscribes(int fd) {
    auto k = std::size_t(peers_[std::size_t(fd)].channel);
    std::string frames;
    raw::append_frame(frames, raw::subscribe, layout_.personal_channel(k));
    raw::append_frame(frames, raw::subscribe, layout_.group_channel(k / layout_.group));
    if (!write_all(fd, frames)) return;
    auto t = now_us();
    peers_[std::size_t(fd)].sent_us.insert(peers_[std::size_t(fd)].sent_us.end(), 2, t);
    in_flight_ += 2;
}

void RawDriver::publish_next(std::uint64_t due) {
    auto next = publishing_.take(due, layout_);
    if (!next) return;
    std::string frame;
    raw::append_frame(frame, raw::publish, publishing_.request(*next, layout_));
    const auto seq = next_slice_++;
    Slice slice{*next};
    for (auto& publisher : publishers_) {
        if (!write_all(publisher.fd, frame)) {
            publishing_.failed = true;  // its answer would never come
            slice.lost = true;
            continue;
        }
        peers_[std::size_t(publisher.fd)].sent_us.push_back(now_us());
        ++in_flight_;
        publisher.waiting.push_back(seq);
        ++slice.waiting;
    }
    if (publishing_.in_flight == 0) last_answer_ = Clock::now();  // the wait starts now
    publishing_.in_flight += slice.waiting;
    if (slice.waiting) slices_.emplace(seq, slice);
}

void RawDriver::publication_answered(int fd, bool lost) {
    auto publisher = std::find_if(publishers_.begin(), publishers_.end(),
                                  [&](const Publisher& x) { return x.fd == fd; });
    if (publisher == publishers_.end()) return;
    if (lost) publishing_.failed = true;
    last_answer_ = Clock::now();
    for (std::size_t n = lost ? publisher->waiting.size() : 1; n > 0; --n) {
        if (publisher->waiting.empty()) break;
        auto slice = slices_.find(publisher->waiting.front());
        publisher->waiting.pop_front();
        --publishing_.in_flight;
        slice->second.lost |= lost;
        // Its reach counts once every server asked has sent its share.
        if (--slice->second.waiting == 0) {
            if (!slice->second.lost) publishing_.answer(slice->second.range, layout_);
            slices_.erase(slice);
        }
    }
    if (lost) publishers_.erase(publisher);
    if (publishing_.chained) publish_next();
}

}  // namespace hawser::bench
