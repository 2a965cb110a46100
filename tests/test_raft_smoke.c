/* test_raft_smoke.c — a three-node cluster elects a leader, replicates and applies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft_net.h"

static void test_three_nodes_elect_replicate_and_apply(void **state)
{
    (void)state;
    struct rn_net net;
    rn_init(&net, 3, NULL);
    rn_elect(&net, 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rn_propose(&net, 1, "x"), RK_OK);
    rn_deliver_all(&net);
    rn_run(&net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(rn_node(&net, id)->applied, 101);
    rn_check_consistency(&net);
    rn_destroy(&net);
}

static void test_ticks_alone_elect_exactly_one_leader(void **state)
{
    (void)state;
    struct rn_net net;
    rn_init(&net, 5, NULL);
    rn_run(&net, 50);
    uint64_t leader = rn_leader(&net);
    assert_true(leader != 0);
    int leaders = 0;
    for (uint64_t id = 1; id <= 5; id++) {
        struct raft_status st;
        raft_status(rn_raft(&net, id), &st);
        leaders += st.role == RAFT_LEADER;
    }
    assert_int_equal(leaders, 1);
    rn_destroy(&net);
}

/* A big entry is taken, not copied: the ready batch and the followers' logs carry the very
 * buffer proposed; a refused take leaves the buffer with the caller (freed here: ASan would
 * report a double free if raft had freed it too). */
static void test_propose_take_keeps_the_buffer_without_a_copy(void **state)
{
    (void)state;
    struct rn_net net;
    rn_init(&net, 3, NULL);
    rn_elect(&net, 1);
    uint32_t len = 300000;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, 'b', len);
    uint64_t index = 0, leader = 0;
    assert_int_equal(raft_propose_take(rn_raft(&net, 1), buf, len, &index, &leader), RK_OK);
    struct raft_ready rd;
    raft_ready(rn_raft(&net, 1), &rd);
    assert_int_equal(rd.n_entries, 1);
    assert_ptr_equal(rd.entries[0].data, buf); /* the buffer itself */
    assert_int_equal(rd.entries[0].index, index);
    raft_advance(rn_raft(&net, 1), &rd);
    rn_deliver_all(&net);
    rn_run(&net, 3);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(rn_node(&net, id)->applied, index);
    rn_check_consistency(&net);

    uint8_t *other = malloc(len);
    assert_non_null(other);
    assert_int_equal(raft_propose_take(rn_raft(&net, 2), other, len, &index, &leader),
                     RK_ENOTLEADER);
    assert_int_equal(leader, 1);
    free(other); /* still ours */
    rn_destroy(&net);
}

/* With asynchronous persistence raft frees no entry data itself: the buffers of entries it
 * drops (here by compaction) are handed over by raft_take_garbage, once, for the host to free
 * when no write in flight can read them. */
static void test_dropped_entries_are_handed_over_after_advance_async(void **state)
{
    (void)state;
    struct rn_net net;
    rn_init(&net, 1, NULL);
    rn_elect(&net, 1);
    struct raft *r = rn_raft(&net, 1);
    uint8_t *buf = malloc(1000);
    assert_non_null(buf);
    memset(buf, 'g', 1000);
    uint64_t index = 0;
    assert_int_equal(raft_propose_take(r, buf, 1000, &index, NULL), RK_OK);
    struct raft_ready rd;
    raft_ready(r, &rd);
    assert_int_equal(rd.n_entries, 1);
    uint64_t term = rd.entries[0].term;
    raft_advance_async(r, &rd);
    raft_persisted(r, index, term);
    for (int i = 0; i < 3 && raft_has_ready(r); i++) { /* commit and apply */
        raft_ready(r, &rd);
        raft_advance_async(r, &rd);
    }
    struct raft_status st;
    raft_status(r, &st);
    assert_int_equal(st.applied, index);
    uint8_t **v = NULL;
    size_t n = 0, cap = 0;
    assert_int_equal(raft_take_garbage(r, &v, &n, &cap), RK_OK);
    assert_int_equal(n, 0); /* nothing dropped yet */
    assert_int_equal(raft_compact(r, index), RK_OK);
    assert_int_equal(raft_take_garbage(r, &v, &n, &cap), RK_OK);
    assert_int_equal(n, 1);
    assert_ptr_equal(v[0], buf);
    assert_int_equal(buf[999], 'g'); /* not freed by raft */
    assert_int_equal(raft_take_garbage(r, &v, &n, &cap), RK_OK);
    assert_int_equal(n, 1); /* handed over once */
    free(v[0]);
    free(v);
    rn_destroy(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_elect_replicate_and_apply),
        cmocka_unit_test(test_ticks_alone_elect_exactly_one_leader),
        cmocka_unit_test(test_propose_take_keeps_the_buffer_without_a_copy),
        cmocka_unit_test(test_dropped_entries_are_handed_over_after_advance_async),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
