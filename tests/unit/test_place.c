/* SPDX-License-Identifier: BSD-3-Clause */
/* Binding plans on hwloc synthetic topologies (so they hold on any machine),
 * plus a sanity check and a harmless bind on this machine's topology. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tessera/error.h"
#include "tessera/place.h"

/* 2 packages x 2 NUMA x 8 cores x 2 PUs: 32 cores, 64 PUs. */
#define BIG "pack:2 numa:2 core:8 pu:2"

static hwloc_topology_t synthetic(const char *desc)
{
    hwloc_topology_t topo;
    assert_int_equal(hwloc_topology_init(&topo), 0);
    assert_int_equal(hwloc_topology_set_synthetic(topo, desc), 0);
    assert_int_equal(hwloc_topology_load(topo), 0);
    return topo;
}

static tsr_place_plan_t *plan_of(hwloc_topology_t topo, int n)
{
    tsr_place_plan_t *plan = NULL;
    assert_int_equal(tsr_place_plan_create(topo, n, &plan), TSR_OK);
    assert_non_null(plan);
    assert_int_equal(tsr_place_plan_nranks(plan), n);
    return plan;
}

static void assert_cpuset(const tsr_place_plan_t *plan, int r, const char *want)
{
    char buf[128];
    assert_int_equal(tsr_place_plan_cpuset_string(plan, r, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, want);
}

/* Invariants every plan on BIG must keep, for any rank count. */
static void check_big(int n)
{
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, n);
    const int cores = 32;
    hwloc_bitmap_t all = hwloc_bitmap_alloc();
    int total = 0, min = cores, max = 0;
    for (int r = 0; r < n; r++) {
        hwloc_const_bitmap_t set = tsr_place_plan_cpuset(plan, r);
        int nc = tsr_place_plan_ncores(plan, r);
        assert_non_null(set);
        assert_true(nc >= 1);
        /* Whole cores: both PUs of each, and one contiguous run. */
        assert_int_equal(hwloc_bitmap_weight(set), 2 * nc);
        assert_int_equal(hwloc_bitmap_last(set) - hwloc_bitmap_first(set) + 1, 2 * nc);
        if (n <= cores) {
            assert_false(hwloc_bitmap_intersects(all, set)); /* disjoint */
            if (r > 0)                                       /* ranks follow core order */
                assert_true(hwloc_bitmap_first(set) > hwloc_bitmap_last(tsr_place_plan_cpuset(plan, r - 1)));
        }
        hwloc_bitmap_or(all, all, set);
        total += nc;
        min = nc < min ? nc : min;
        max = nc > max ? nc : max;
    }
    assert_true(hwloc_bitmap_isequal(all, hwloc_topology_get_topology_cpuset(topo)));
    assert_true(max - min <= 1); /* balanced */
    assert_int_equal(total, n <= cores ? cores : n);
    hwloc_bitmap_free(all);
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_big_invariants(void **state)
{
    (void)state;
    const int counts[] = {1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 33, 40, 64, 100};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        check_big(counts[i]);
}

static void test_one_rank(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 1);
    assert_int_equal(tsr_place_plan_ncores(plan, 0), 32);
    assert_cpuset(plan, 0, "0-63");
    assert_int_equal(tsr_place_plan_numa(plan, 0), -1); /* spans all four */
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_two_ranks_one_package_each(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 2);
    for (int r = 0; r < 2; r++) {
        hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, (unsigned)r);
        assert_int_equal(tsr_place_plan_ncores(plan, r), 16);
        assert_true(hwloc_bitmap_isequal(tsr_place_plan_cpuset(plan, r), pkg->cpuset));
        assert_int_equal(tsr_place_plan_numa(plan, r), -1); /* two NUMA nodes */
    }
    assert_cpuset(plan, 0, "0-31");
    assert_cpuset(plan, 1, "32-63");
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_four_ranks_one_numa_each(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 4);
    for (int r = 0; r < 4; r++) {
        hwloc_obj_t numa = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)r);
        assert_int_equal(tsr_place_plan_ncores(plan, r), 8);
        assert_int_equal(tsr_place_plan_numa(plan, r), r);
        assert_true(hwloc_bitmap_isequal(tsr_place_plan_cpuset(plan, r), numa->cpuset));
    }
    assert_cpuset(plan, 0, "0-15");
    assert_cpuset(plan, 3, "48-63");
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_eight_ranks_stay_in_numa(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 8);
    for (int r = 0; r < 8; r++) {
        assert_int_equal(tsr_place_plan_ncores(plan, r), 4);
        assert_int_equal(tsr_place_plan_numa(plan, r), r / 2);
    }
    assert_cpuset(plan, 1, "8-15");
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_three_ranks_uneven(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 3);
    assert_int_equal(tsr_place_plan_ncores(plan, 0), 10);
    assert_int_equal(tsr_place_plan_ncores(plan, 1), 11);
    assert_int_equal(tsr_place_plan_ncores(plan, 2), 11);
    assert_cpuset(plan, 0, "0-19");
    assert_cpuset(plan, 1, "20-41");
    assert_cpuset(plan, 2, "42-63");
    assert_int_equal(tsr_place_plan_numa(plan, 0), -1);
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_one_core_each(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 32);
    char want[32];
    for (int r = 0; r < 32; r++) {
        assert_int_equal(tsr_place_plan_ncores(plan, r), 1);
        assert_int_equal(tsr_place_plan_numa(plan, r), r / 8);
        snprintf(want, sizeof want, "%d-%d", 2 * r, 2 * r + 1);
        assert_cpuset(plan, r, want);
    }
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_more_ranks_than_cores(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    tsr_place_plan_t *plan = plan_of(topo, 40);
    for (int r = 0; r < 40; r++) {
        assert_int_equal(tsr_place_plan_ncores(plan, r), 1);
        /* Round-robin: rank r shares core r % 32 with rank r +- 32. */
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)(r % 32));
        assert_true(hwloc_bitmap_isequal(tsr_place_plan_cpuset(plan, r), core->cpuset));
    }
    assert_cpuset(plan, 33, "2-3");
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_small_strings_and_single_numa(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic("pack:2 core:2 pu:1");
    tsr_place_plan_t *plan = plan_of(topo, 2);
    assert_cpuset(plan, 0, "0-1");
    assert_cpuset(plan, 1, "2-3");
    /* Without a numa level hwloc makes one NUMA node for the machine. */
    assert_int_equal(tsr_place_plan_numa(plan, 0), 0);
    assert_int_equal(tsr_place_plan_numa(plan, 1), 0);
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

/* GPU choice without locality facts (a synthetic topology has no PCI
 * devices): spread by local rank; nonsense bus ids are "unknown". */
static void test_gpu_pick_without_locality(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic(BIG);
    const char *ids[4] = {"0000:3b:00.0", "0000:5e:00.0", "0000:86:00.0", "0000:af:00.0"};
    hwloc_const_bitmap_t all = hwloc_topology_get_topology_cpuset(topo);
    assert_int_equal(tsr_place_gpu_near(topo, all, ids[0]), -1);
    assert_int_equal(tsr_place_gpu_near(topo, all, "not-a-bus-id"), -1);
    assert_int_equal(tsr_place_gpu_near(topo, all, NULL), -1);
    assert_int_equal(tsr_place_gpu_pick(topo, all, ids, 4, 0), 0);
    assert_int_equal(tsr_place_gpu_pick(topo, all, ids, 4, 3), 3);
    assert_int_equal(tsr_place_gpu_pick(topo, all, ids, 4, 5), 1);
    assert_int_equal(tsr_place_gpu_pick(NULL, NULL, ids, 2, 3), 1);
    assert_int_equal(tsr_place_gpu_pick(topo, all, ids, 0, 0), -1);
    hwloc_topology_destroy(topo);
}

static void test_no_cores_falls_back_to_pus(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic("pack:2 pu:3");
    assert_int_equal(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE), 0);
    tsr_place_plan_t *plan = plan_of(topo, 2);
    assert_int_equal(tsr_place_plan_ncores(plan, 0), 3);
    assert_cpuset(plan, 0, "0-2");
    assert_cpuset(plan, 1, "3-5");
    tsr_place_plan_destroy(plan);
    hwloc_topology_destroy(topo);
}

static void test_bad_input(void **state)
{
    (void)state;
    hwloc_topology_t topo = synthetic("pack:2 core:2 pu:1");
    tsr_place_plan_t *plan = (tsr_place_plan_t *)0x1;
    tsr_error_clear();
    assert_int_equal(tsr_place_plan_create(topo, 0, &plan), TSR_EINVAL);
    assert_null(plan);
    assert_non_null(strstr(tsr_last_error(), "local ranks"));
    tsr_error_clear();
    assert_int_equal(tsr_place_plan_create(topo, -3, &plan), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "-3"));
    assert_int_equal(tsr_place_plan_create(NULL, 2, &plan), TSR_EINVAL);
    assert_int_equal(tsr_place_plan_create(topo, 2, NULL), TSR_EINVAL);

    plan = plan_of(topo, 2);
    char buf[3];
    assert_null(tsr_place_plan_cpuset(plan, 2));
    assert_null(tsr_place_plan_cpuset(plan, -1));
    assert_int_equal(tsr_place_plan_ncores(plan, 5), TSR_EINVAL);
    assert_int_equal(tsr_place_plan_numa(plan, 5), -1);
    assert_int_equal(tsr_place_plan_cpuset_string(plan, 9, buf, sizeof buf), TSR_EINVAL);
    assert_int_equal(tsr_place_plan_cpuset_string(plan, 0, NULL, 0), TSR_EINVAL);
    assert_int_equal(tsr_place_plan_cpuset_string(plan, 0, buf, 2), TSR_EINVAL); /* "0-1" needs 4 */
    assert_int_equal(tsr_place_bind(topo, plan, 7), TSR_EINVAL);
    assert_int_equal(tsr_place_plan_nranks(NULL), 0);
    tsr_place_plan_destroy(plan);
    tsr_place_plan_destroy(NULL);
    hwloc_topology_destroy(topo);
}

static void test_this_machine(void **state)
{
    (void)state;
    hwloc_topology_t topo;
    assert_int_equal(hwloc_topology_init(&topo), 0);
    assert_int_equal(hwloc_topology_load(topo), 0);
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (cores <= 0)
        cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    hwloc_const_bitmap_t machine = hwloc_topology_get_topology_cpuset(topo);

    tsr_place_plan_t *plan = plan_of(topo, 2);
    int total = 0;
    for (int r = 0; r < 2; r++) {
        hwloc_const_bitmap_t set = tsr_place_plan_cpuset(plan, r);
        assert_false(hwloc_bitmap_iszero(set));
        assert_true(hwloc_bitmap_isincluded(set, machine));
        total += tsr_place_plan_ncores(plan, r);
    }
    assert_int_equal(total, cores >= 2 ? cores : 2);
    if (cores >= 2)
        assert_false(hwloc_bitmap_intersects(tsr_place_plan_cpuset(plan, 0), tsr_place_plan_cpuset(plan, 1)));
    tsr_place_plan_destroy(plan);

    /* Binding to the whole node changes nothing for this test process; put
     * the original binding back anyway. */
    hwloc_bitmap_t before = hwloc_bitmap_alloc(), after = hwloc_bitmap_alloc();
    assert_int_equal(hwloc_get_cpubind(topo, before, HWLOC_CPUBIND_PROCESS), 0);
    plan = plan_of(topo, 1);
    assert_int_equal(tsr_place_bind(topo, plan, 0), TSR_OK);
    assert_int_equal(hwloc_get_cpubind(topo, after, HWLOC_CPUBIND_PROCESS), 0);
    assert_true(hwloc_bitmap_isincluded(after, tsr_place_plan_cpuset(plan, 0)));
    hwloc_set_cpubind(topo, before, HWLOC_CPUBIND_PROCESS);
    tsr_place_plan_destroy(plan);
    hwloc_bitmap_free(before);
    hwloc_bitmap_free(after);

    tsr_place_set_blas_threads(1);
    tsr_place_set_blas_threads(0); /* clamped to 1 */
    hwloc_topology_destroy(topo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_invariants),
        cmocka_unit_test(test_one_rank),
        cmocka_unit_test(test_two_ranks_one_package_each),
        cmocka_unit_test(test_four_ranks_one_numa_each),
        cmocka_unit_test(test_eight_ranks_stay_in_numa),
        cmocka_unit_test(test_three_ranks_uneven),
        cmocka_unit_test(test_one_core_each),
        cmocka_unit_test(test_more_ranks_than_cores),
        cmocka_unit_test(test_small_strings_and_single_numa),
        cmocka_unit_test(test_no_cores_falls_back_to_pus),
        cmocka_unit_test(test_gpu_pick_without_locality),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
