// Connector (see connector.hpp): resolution and the Happy-Eyeballs race of one connect attempt.
// Thread affinity: its loop.
#include "rpc/connector.hpp"

#include "rpc/address.hpp"

namespace hawser::detail {

using asio::ip::tcp;

Connector::Connector(Loop& loop, std::vector<std::string> endpoints,
                     std::chrono::milliseconds stagger, std::chrono::milliseconds timeout,
                     Done done)
    : loop_(loop),
      endpoints_(std::move(endpoints)),
      stagger_(stagger),
      timeout_(timeout),
      done_(std::move(done)),
      resolver_(loop.context()),
      stagger_timer_(loop.context()),
      deadline_timer_(loop.context()) {}

std::vector<tcp::endpoint> Connector::interleave(std::vector<tcp::endpoint> addrs) {
    if (addrs.empty()) return addrs;
    bool first_v6 = addrs.front().address().is_v6();
    std::vector<tcp::endpoint> a, b, out;
    for (auto& e : addrs) (e.address().is_v6() == first_v6 ? a : b).push_back(e);
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        if (i < a.size()) out.push_back(a[i]);
        if (i < b.size()) out.push_back(b[i]);
    }
    return out;
}

void Connector::start() {
    deadline_timer_.expires_after(timeout_);
    deadline_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (!ec)
            self->finish(
                Error{Errc::timeout,
                      "connect timed out" +
                          (self->last_error_.empty() ? "" : " (" + self->last_error_ + ")")});
    });
    next_endpoint();
}

void Connector::cancel() {
    finish(Error{Errc::cancelled, "connect cancelled"});
}

void Connector::next_endpoint() {
    if (finished_) return;
    if (endpoint_index_ >= endpoints_.size())
        return finish(
            Error{Errc::not_connected,
                  "no endpoint answered" + (last_error_.empty() ? "" : ": " + last_error_)});
    auto hp = parse_host_port(endpoints_[endpoint_index_++]);
    if (!hp) {
        last_error_ = hp.error().message;
        return next_endpoint();
    }
    resolver_.async_resolve(hp->host, hp->port,
                            [self = shared_from_this(), name = hp->host](
                                std::error_code ec, tcp::resolver::results_type results) {
                                if (self->finished_) return;
                                if (ec) {
                                    self->last_error_ =
                                        "cannot resolve " + name + ": " + ec.message();
                                    return self->next_endpoint();
                                }
                                std::vector<tcp::endpoint> addrs;
                                for (const auto& r : results) addrs.push_back(r.endpoint());
                                self->addrs_ = interleave(std::move(addrs));
                                self->addr_index_ = 0;
                                self->launch();
                            });
}

void Connector::launch() {
    if (finished_) return;
    if (addr_index_ >= addrs_.size()) {
        if (in_flight_ == 0) next_endpoint();
        return;
    }
    std::size_t index = attempts_.size();
    attempts_.push_back(std::make_unique<TcpSocket>(loop_.context()));
    ++in_flight_;
    attempts_.back()->async_connect(
        addrs_[addr_index_++],
        [self = shared_from_this(), index](std::error_code ec) { self->on_attempt(index, ec); });
    if (addr_index_ < addrs_.size()) {
        stagger_timer_.expires_after(stagger_);
        stagger_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (!ec) self->launch();
        });
    }
}

void Connector::on_attempt(std::size_t index, std::error_code ec) {
    --in_flight_;
    if (finished_) return;
    if (!ec) return finish(std::move(*attempts_[index]));
    last_error_ = ec.message();
    std::error_code ignored;
    attempts_[index]->close(ignored);
    stagger_timer_.cancel();  // a failure starts the next attempt at once
    launch();
}

void Connector::finish(Result<TcpSocket> result) {
    if (finished_) return;
    finished_ = true;
    resolver_.cancel();
    stagger_timer_.cancel();
    deadline_timer_.cancel();
    for (auto& s : attempts_) {
        std::error_code ignored;
        if (s->is_open()) s->close(ignored);
    }
    auto done = std::move(done_);
    done(std::move(result));
}

}  // namespace hawser::detail
