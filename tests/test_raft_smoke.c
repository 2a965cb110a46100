/* test_raft_smoke.c — a three-node cluster elects a leader, replicates and applies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_elect_replicate_and_apply),
        cmocka_unit_test(test_ticks_alone_elect_exactly_one_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
