/* SPDX-License-Identifier: BSD-3-Clause */
/* The task farm's parts without processes, under ASan/UBSan: task files
 * (plain lines, brace sweeps, JSON Lines with each, every refusal naming
 * its line), the scheduler (priority order, dependencies, skips, retries,
 * cancel) and the journal (records back as written, a torn tail cut off, a
 * damaged record refused by number, the lock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/journal.h"
#include "tasks/sched.h"
#include "tasks/taskfile.h"
#include "tessera/error.h"

static int parse(ttable_t *tt, const char *text, int max_cores)
{
    tparse_opts_t o = {.origin = "t.txt", .max_cores = max_cores, .max_gpus = 1, .quiet = 1};
    return taskfile_parse(tt, text, strlen(text), &o, NULL);
}

static const task_t *get(ttable_t *tt, const char *id)
{
    uint32_t i = ttable_find(tt, id);
    assert_int_not_equal(i, TASK_NONE);
    return &tt->t[i];
}

static void test_plain(void **state)
{
    (void)state;
    ttable_t tt;
    ttable_init(&tt);
    assert_int_equal(parse(&tt,
                           "# comment\n\necho a\r\n  echo {1..3} x{a,b}  \n"
                           "echo '{1..3}' \"{a,b}\" ${X} \\{1..2} {only}\nseq {08..10}\nrun {10..0..5}\n",
                           0),
                     TSR_OK);
    assert_int_equal(tt.n, 1 + 6 + 1 + 3 + 3);
    assert_string_equal(get(&tt, "3")->cmd, "echo a");
    assert_string_equal(get(&tt, "4.1")->cmd, "echo 1 xa");
    assert_string_equal(get(&tt, "4.2")->cmd, "echo 1 xb");
    assert_string_equal(get(&tt, "4.6")->cmd, "echo 3 xb");
    assert_string_equal(get(&tt, "5")->cmd, "echo '{1..3}' \"{a,b}\" ${X} \\{1..2} {only}");
    assert_string_equal(get(&tt, "6.1")->cmd, "seq 08");
    assert_string_equal(get(&tt, "6.3")->cmd, "seq 10");
    assert_string_equal(get(&tt, "7.3")->cmd, "run 0");
    assert_int_equal(get(&tt, "3")->cores, 1);
    ttable_free(&tt);
}

static void test_json(void **state)
{
    (void)state;
    ttable_t tt;
    ttable_init(&tt);
    const char *f =
        "{\"id\": \"prep\", \"cmd\": \"make\", \"priority\": 3, \"retries\": 2, \"backoff\": {\"base\": 1.5, "
        "\"factor\": 3}, \"timeout\": \"2m\", \"cores\": 2, \"gpus\": 1, \"env\": {\"A\": \"b c\"}, \"cwd\": \"w\", "
        "\"tags\": [\"x\", \"y\"], \"stdout\": \"o/{id}.log\"}\n"
        "{\"id\": \"run-{i}-{m}\", \"cmd\": \"sim --i {i} --m {m} {unknown}\", \"after\": \"prep\", "
        "\"env\": {\"I\": \"{i}\"}, \"each\": {\"i\": \"1..2\", \"m\": [\"p\", 5]}}\n"
        "{\"cmd\": \"reduce\", \"after\": [\"run-*\"]}\n";
    assert_int_equal(parse(&tt, f, 4), TSR_OK);
    assert_int_equal(tt.n, 6);
    const task_t *p = get(&tt, "prep");
    assert_int_equal(p->prio, 3);
    assert_int_equal(p->retries, 2);
    assert_true(p->backoff_s == 1.5f && p->backoff_factor == 3.0f);
    assert_true(p->timeout_s == 120);
    assert_int_equal(p->cores, 2);
    assert_int_equal(p->gpus, 1);
    assert_string_equal(p->ext->env[0], "A=b c");
    assert_string_equal(p->ext->cwd, "w");
    assert_int_equal(p->ext->ntags, 2);
    assert_string_equal(p->ext->out, "o/{id}.log");
    const task_t *r = get(&tt, "run-2-5");
    assert_string_equal(r->cmd, "sim --i 2 --m 5 {unknown}");
    assert_string_equal(r->ext->env[0], "I=2");
    assert_int_equal(r->ndeps, 1);
    const task_t *red = get(&tt, "3");
    assert_int_equal(red->ndeps, 4); /* the prefix names all four runs */
    ttable_free(&tt);
}

/* Each refusal: TSR_EDATA, the table untouched, the message naming where. */
static void refused(const char *text, int max_cores, const char *msg)
{
    ttable_t tt;
    ttable_init(&tt);
    assert_int_equal(parse(&tt, "echo ok\n", 0), TSR_OK);
    int rc = parse(&tt, text, max_cores);
    if (rc != TSR_EDATA || !strstr(tsr_last_error(), msg))
        fail_msg("for %s: rc %d, message '%s', expected '%s'", text, rc, tsr_last_error(), msg);
    assert_int_equal(tt.n, 1);
    assert_int_equal(ttable_find(&tt, "1"), 0);
    ttable_free(&tt);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("# x\n{\"cmd\": \"x\",}\n", 0, "t.txt:2: not valid JSON");
    refused("{\"cmd\": \"x\", \"priorty\": 1}\n", 0, "unknown key \"priorty\" (did you mean \"priority\"?)");
    refused("{\"id\": \"a\", \"cmd\": \"x\"}\n{\"id\": \"a\", \"cmd\": \"y\"}\n", 0,
            "t.txt:2: duplicate task id 'a' (first defined on line 1)");
    refused("{\"id\": \"1\", \"cmd\": \"x\"}\n", 0, "duplicate task id '1': the farm already has it");
    refused("{\"id\": \"a\", \"cmd\": \"x\", \"after\": \"nope\"}\n", 0, "task 'a' waits for unknown task 'nope'");
    refused("{\"id\": \"a\", \"cmd\": \"x\", \"after\": \"c\"}\n{\"id\": \"b\", \"cmd\": \"x\", \"after\": \"a\"}\n"
            "{\"id\": \"c\", \"cmd\": \"x\", \"after\": \"b\"}\n",
            0, "dependency cycle: ");
    refused("{\"id\": \"a\", \"cmd\": \"x\", \"after\": \"a\"}\n", 0, "dependency cycle: a -> a");
    refused("{\"id\": \"a\", \"cmd\": \"x\", \"cores\": 9}\n", 8, "task 'a' asks for 9 cores; the largest rank has 8");
    refused("{\"id\": \"a\", \"cmd\": \"x\", \"gpus\": 2}\n", 8, "task 'a' asks for 2 GPUs");
    refused("{\"id\": \"a/b\", \"cmd\": \"x\"}\n", 0, "task id 'a/b' is not valid");
    refused("{\"id\": \"a\"}\n", 0, "the task has no \"cmd\"");
    refused("{\"cmd\": \"x\", \"cores\": \"two\"}\n", 0, "\"cores\" must be an integer from 1 to 4096");
    refused("{\"cmd\": \"x\", \"timeout\": -1}\n", 0, "\"timeout\" must be seconds");
    refused("{\"cmd\": \"x\", \"each\": {\"i\": \"1..\"}}\n", 0, "is not a range");
    refused("{\"cmd\": \"x\", \"env\": {\"1A\": \"b\"}}\n", 0, "is not a variable name");
    refused("# x\n# y\n{\"cmd\": \"x\"\n", 0, "t.txt:3: not valid JSON");
    refused("echo a\x01z\n", 0, "a control character or invalid UTF-8 at byte 7");
    refused("echo \xff\xfe\n", 0, "invalid UTF-8");
    refused("{\"cmd\": \"x\", \"cmd\": \"y\"}\n", 0, "not valid JSON");
    refused("{\"id\": \"q\", \"cmd\": \"x\", \"after\": \"zz*\"}\n", 0, "matches no task");
    refused("echo {1..100000000}{1..2}\n", 0, "expand to more than");
}

static void test_sched(void **state)
{
    (void)state;
    ttable_t tt;
    ttable_init(&tt);
    assert_int_equal(parse(&tt,
                           "{\"id\": \"lo\", \"cmd\": \"x\"}\n{\"id\": \"hi\", \"cmd\": \"x\", \"priority\": 9}\n"
                           "{\"id\": \"big\", \"cmd\": \"x\", \"cores\": 2}\n"
                           "{\"id\": \"dep\", \"cmd\": \"x\", \"after\": \"lo\"}\n"
                           "{\"id\": \"dep2\", \"cmd\": \"x\", \"after\": \"dep\"}\n"
                           "{\"id\": \"r\", \"cmd\": \"x\", \"retries\": 1, \"backoff\": 0.5}\n",
                           4),
                     TSR_OK);
    sched_t s;
    sched_init(&s, &tt);
    sched_settle(&s, 0);
    assert_int_equal(s.count[TSR_TASK_READY], 4);
    assert_int_equal(s.count[TSR_TASK_PENDING], 2);
    assert_int_equal(s.nshape, 2);
    /* shape (1 core): hi first, then lo, then r */
    int k1 = s.shape[0].cores == 1 ? 0 : 1;
    assert_int_equal(sched_head(&s, k1), ttable_find(&tt, "hi"));
    sched_take(&s, k1);
    assert_int_equal(sched_head(&s, k1), ttable_find(&tt, "lo"));
    uint32_t lo = ttable_find(&tt, "lo"), r = ttable_find(&tt, "r"), dep = ttable_find(&tt, "dep");
    sched_take(&s, k1);
    sched_set(&s, lo, TSR_TASK_RUNNING);
    tt.t[lo].attempts = 1;
    assert_int_equal(sched_finish(&s, lo, HOW_EXITED, 3), TSR_TASK_FAILED);
    assert_int_equal(tt.t[dep].state, TSR_TASK_SKIPPED);
    assert_int_equal(tt.t[ttable_find(&tt, "dep2")].state, TSR_TASK_SKIPPED);
    assert_int_equal(tt.t[ttable_find(&tt, "dep2")].cause, dep);
    assert_int_equal(sched_head(&s, k1), r);
    sched_take(&s, k1);
    sched_set(&s, r, TSR_TASK_RUNNING);
    tt.t[r].attempts = 1;
    assert_int_equal(sched_finish(&s, r, HOW_TIMEOUT, 15), TSR_TASK_DELAYED);
    assert_int_equal(sched_head(&s, k1), TASK_NONE);
    assert_true(sched_tick(&s, tnow()) > tnow());
    assert_int_equal(sched_tick(&s, tnow() + 1), 0);
    assert_int_equal(sched_head(&s, k1), r);
    /* interrupted attempts do not count */
    sched_take(&s, k1);
    sched_set(&s, r, TSR_TASK_RUNNING);
    tt.t[r].attempts = 2;
    assert_int_equal(sched_finish(&s, r, HOW_INTERRUPTED, 0), TSR_TASK_READY);
    assert_int_equal(tt.t[r].attempts, 1);
    uint32_t big = ttable_find(&tt, "big");
    sched_cancel(&s, big);
    assert_int_equal(tt.t[big].state, TSR_TASK_CANCELLED);
    assert_int_equal(sched_head(&s, 1 - k1), TASK_NONE);
    assert_int_equal(sched_final(&s), 4); /* lo failed, dep and dep2 skipped, big cancelled */
    sched_free(&s);
    ttable_free(&tt);
}

static char dir[256];

typedef struct seen {
    int n;
    unsigned types[64];
    char ids[64][16];
} seen_t;

static int collect(void *ctx, unsigned type, tcur_t *c, uint64_t number)
{
    seen_t *s = ctx;
    (void)number;
    size_t n;
    const char *id = tcur_str(c, &n);
    s->types[s->n] = type;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%.*s", (int)n, id ? id : "");
    s->n++;
    return TSR_OK;
}

static void append(journal_t *j, unsigned type, const char *id)
{
    tbuf_t *b = journal_begin(j, type);
    tbuf_str(b, id);
    journal_end(j);
}

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_journal(void **state)
{
    (void)state;
    const char *tmp = getenv("TSR_TEST_TMP") ? getenv("TSR_TEST_TMP") : "/tmp";
    mkdir(tmp, 0755);
    snprintf(dir, sizeof dir, "%s/journal-unit-%d", tmp, (int)getpid());
    char path[300];
    snprintf(path, sizeof path, "%s/journal", dir);
    unlink(path);
    seen_t s = {0};
    journal_t *j = NULL, *j2 = NULL;
    assert_int_equal(journal_open(dir, 1, collect, &s, &j), TSR_OK);
    assert_int_equal(s.n, 0);
    /* a second farm on the same journal is refused, naming the first */
    assert_int_equal(journal_open(dir, 1, collect, &s, &j2), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "is in use by the farm of"));
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        append(j, i % 2 ? J_FINISH : J_START, id);
    }
    assert_int_equal(journal_sync(j), TSR_OK);
    journal_close(j);
    assert_int_equal(journal_read(dir, collect, &s), TSR_OK);
    assert_int_equal(s.n, 40);
    assert_string_equal(s.ids[39], "t39");
    assert_int_equal(s.types[0], J_START);
    /* a torn last record: cut off with a warning, the rest replayed */
    off_t full = size_of(path);
    assert_int_equal(truncate(path, full - 3), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(journal_open(dir, 1, collect, &s, &j), TSR_OK);
    assert_int_equal(s.n, 39);
    append(j, J_CANCEL, "after");
    journal_close(j);
    memset(&s, 0, sizeof s);
    assert_int_equal(journal_read(dir, collect, &s), TSR_OK);
    assert_int_equal(s.n, 40);
    assert_string_equal(s.ids[39], "after");
    /* trailing zeros (a crash extending the file) count as torn */
    int fd = open(path, O_WRONLY | O_APPEND);
    char zeros[100] = {0};
    assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    memset(&s, 0, sizeof s);
    assert_int_equal(journal_open(dir, 1, collect, &s, &j), TSR_OK);
    journal_close(j);
    assert_int_equal(s.n, 40);
    /* a damaged record in the middle: refused with its number */
    fd = open(path, O_RDWR);
    char byte;
    assert_int_equal(pread(fd, &byte, 1, 200), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, 200), 1);
    close(fd);
    memset(&s, 0, sizeof s);
    assert_int_equal(journal_open(dir, 1, collect, &s, &j), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "is damaged ("));
    assert_non_null(strstr(tsr_last_error(), "record "));
    /* not a journal at all */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "hello, world, this is not a journal\n", 36), 36);
    close(fd);
    assert_int_equal(journal_read(dir, collect, &s), TSR_EDATA);
    unlink(path);
    snprintf(path, sizeof path, "%s/owner", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain), cmocka_unit_test(test_json),    cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sched), cmocka_unit_test(test_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
