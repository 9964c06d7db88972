// Unit tests of the cross-chunk queries (extension/core/read_walk.hpp) that pgfeed.page and
// mark_all_read walk the read state with, against a plain std::set of positions; chunk edges
// (k*1024-1, k*1024, k*1024+1) most of all.
#include "read_walk.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>

namespace pgfeed {
namespace {

// A user's flipped positions, both as chunks (what the queries read) and as a set (the reference).
class Flipped {
  public:
    explicit Flipped(std::set<int64_t> positions) : set_(std::move(positions)) {
        for (int64_t p : set_)
            chunks_[chunk_of(p)].set(offset_of(p));
    }
    // Returns a reference to an empty chunk for chunks without bits, as ChunkCache does.
    const ChunkBits &operator()(int64_t c) { return chunks_[c]; }
    const std::set<int64_t> &set() const { return set_; }
    int64_t lo() const { return *set_.begin(); }
    int64_t hi() const { return *set_.rbegin(); }

    std::optional<int64_t> highest_set(int64_t below, int64_t floor) {
        return highest_set_in(*this, lo(), hi(), below, floor);
    }
    int64_t run_start(int64_t position) { return run_start_in(*this, lo(), position); }

    std::optional<int64_t> expected_highest_set(int64_t below, int64_t floor) const {
        auto it = set_.lower_bound(below);
        if (it == set_.begin())
            return std::nullopt;
        --it;
        return *it >= floor ? std::optional<int64_t>(*it) : std::nullopt;
    }
    int64_t expected_run_start(int64_t position) const {
        while (set_.count(position - 1))
            --position;
        return position;
    }

  private:
    std::set<int64_t> set_;
    std::map<int64_t, ChunkBits> chunks_;
};

std::set<int64_t> run(int64_t first, int64_t last) {
    std::set<int64_t> s;
    for (int64_t p = first; p <= last; ++p)
        s.insert(p);
    return s;
}

std::set<int64_t> operator+(std::set<int64_t> a, const std::set<int64_t> &b) {
    a.insert(b.begin(), b.end());
    return a;
}

// The bug pgfeed.page(unread_only => true) had: marks at 1 and 2048 made the run ending at 2048
// start at 1024 (offset 1024 of chunk 1 ORed into position 1024), so 1024..2047 were skipped.
TEST(RunStart, ClearTopOfTheChunkBelowEndsTheRun) {
    Flipped f({1, 2048});
    EXPECT_EQ(f.run_start(2048), 2048);
    EXPECT_EQ(f.run_start(1), 1);
}

TEST(RunStart, AtChunkEdges) {
    for (int64_t k : {1, 2, 3, 1000}) {
        const int64_t edge = k * kChunkBits;
        SCOPED_TRACE("edge " + std::to_string(edge));
        for (int64_t end : {edge - 1, edge, edge + 1}) {
            SCOPED_TRACE("run ending at " + std::to_string(end));
            // A single bit, with one far below so that the chunks between are walked.
            Flipped single({1, end});
            EXPECT_EQ(single.run_start(end), end);
            // Runs that start on either side of the edge.
            for (int64_t start : {edge - 2, edge - 1, edge, edge + 1}) {
                if (start > end)
                    continue;
                Flipped r(std::set<int64_t>{1} + run(start, end));
                EXPECT_EQ(r.run_start(end), start) << "run " << start << ".." << end;
            }
        }
    }
}

TEST(RunStart, DenseChunksAllTheWayDown) {
    // Whole chunks set, down to the lowest bit: the run starts at the lowest position.
    Flipped whole(run(1024, 3 * 1024 - 1));
    EXPECT_EQ(whole.run_start(3 * 1024 - 1), 1024);
    EXPECT_EQ(whole.run_start(2048), 1024);
    Flipped from_zero(run(0, 2047));
    EXPECT_EQ(from_zero.run_start(2047), 0);
    // A hole at the top of a dense chunk ends the run at the next chunk's first position.
    std::set<int64_t> holed = run(5, 3000);
    holed.erase(2047);
    Flipped h(holed);
    EXPECT_EQ(h.run_start(3000), 2048);
    EXPECT_EQ(h.run_start(2046), 5);
}

TEST(HighestSet, AtChunkEdges) {
    Flipped f({1023, 1024, 1025, 2047, 2048, 4095});
    EXPECT_EQ(f.highest_set(4096, 0), 4095);
    EXPECT_EQ(f.highest_set(4095, 0), 2048);
    EXPECT_EQ(f.highest_set(2048, 0), 2047);
    EXPECT_EQ(f.highest_set(2047, 0), 1025);
    EXPECT_EQ(f.highest_set(1025, 0), 1024);
    EXPECT_EQ(f.highest_set(1024, 0), 1023);
    EXPECT_EQ(f.highest_set(1023, 0), std::nullopt);
    EXPECT_EQ(f.highest_set(4095, 2048), 2048);
    EXPECT_EQ(f.highest_set(4095, 2049), std::nullopt);
    EXPECT_EQ(f.highest_set(1024, 1023), 1023);
    EXPECT_EQ(f.highest_set(1024, 1024), std::nullopt);
    EXPECT_EQ(f.highest_set(1 << 20, 0), 4095); // above the highest bit
    EXPECT_EQ(f.highest_set(0, 0), std::nullopt);
}

// Randomized against the set: sparse and dense chunks, runs across edges, every query position
// near an edge or a bit.
TEST(ReadWalkRandomized, MatchesStdSet) {
    std::mt19937_64 rng(20261203); // fixed: failures reproduce
    for (int round = 0; round < 400; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const int64_t chunks = 1 + rng() % 5;
        std::set<int64_t> positions;
        for (int64_t c = 0; c < chunks; ++c) {
            switch (rng() % 4) {
            case 0: // empty
                break;
            case 1: // sparse, an offset array
                for (int i = rng() % 8; i >= 0; --i)
                    positions.insert(position_at(c, rng() % kChunkBits));
                break;
            case 2: // dense, a bitmap, with holes
                for (int o = 0; o < kChunkBits; ++o)
                    if (rng() % 8)
                        positions.insert(position_at(c, o));
                break;
            default: // runs touching the chunk's edges
                positions = positions + run(position_at(c, 0), position_at(c, rng() % 3));
                positions = positions + run(position_at(c, kChunkBits - 1 - rng() % 3), position_at(c, kChunkBits - 1));
                break;
            }
        }
        if (positions.empty())
            continue;
        Flipped f(positions);
        std::vector<int64_t> probes;
        for (int64_t c = 0; c <= chunks; ++c)
            for (int64_t d : {-2, -1, 0, 1, 2})
                if (c * kChunkBits + d >= 0)
                    probes.push_back(c * kChunkBits + d);
        for (int i = 0; i < 20; ++i) {
            auto it = positions.begin();
            std::advance(it, rng() % positions.size());
            probes.push_back(*it);
            probes.push_back(*it + 1);
        }
        for (int64_t p : probes) {
            if (positions.count(p)) {
                ASSERT_EQ(f.run_start(p), f.expected_run_start(p)) << "run_start(" << p << ")";
            }
            for (int64_t floor : {int64_t{0}, p - 1024, p - 3, p - 1}) {
                ASSERT_EQ(f.highest_set(p, floor), f.expected_highest_set(p, floor))
                    << "highest_set_in(below " << p << ", floor " << floor << ")";
            }
        }
    }
}

} // namespace
} // namespace pgfeed
