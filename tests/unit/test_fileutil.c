/* SPDX-License-Identifier: BSD-3-Clause */
/* The checks every writer and reader makes (common/fileutil.h) and the
 * escaping of every error message (common/text.h), on real files in
 * $TSR_TEST_TMP/fileutil: links, FIFOs, directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/text.h"
#include "tessera/error.h"

static char dir[512];

static const char *tpath(const char *name)
{
    static char buf[4][640];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put(const char *name, const char *text)
{
    FILE *f = fopen(tpath(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_contents(const char *name, const char *want)
{
    char buf[64] = "";
    FILE *f = fopen(tpath(name), "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, want);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TSR_TEST_TMP");
    char cmd[1200];
    snprintf(dir, sizeof dir, "%s/fileutil", base ? base : "/tmp");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    return system(cmd);
}

static void test_output_same_as_input(void **state)
{
    (void)state;
    put("in.h5", "data");
    assert_int_equal(symlink("in.h5", tpath("sym.h5")), 0);
    assert_int_equal(link(tpath("in.h5"), tpath("hard.h5")), 0);
    char in[640];
    snprintf(in, sizeof in, "%s", tpath("in.h5"));
    const char *ins[3] = {NULL, "", in};
    assert_int_equal(tsr_file_check_output(tpath("in.h5"), ins, 3), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "is the same file as the input"));
    assert_int_equal(tsr_file_check_output(tpath("sym.h5"), ins, 3), TSR_EINVAL);
    assert_int_equal(tsr_file_check_output(tpath("hard.h5"), ins, 3), TSR_EINVAL);
    assert_int_equal(tsr_file_check_output(tpath("new.h5"), ins, 3), TSR_OK);
    /* Neither exists yet: the same path after resolving ".." still is. */
    char lat[640];
    snprintf(lat, sizeof lat, "%s", tpath("later.h5"));
    const char *later[1] = {lat};
    mkdir(tpath("sub"), 0755);
    assert_int_equal(tsr_file_check_output(tpath("sub/../later.h5"), later, 1), TSR_EINVAL);
    assert_int_equal(tsr_file_check_output(tpath("sub/later.h5"), later, 1), TSR_OK);
}

static void test_special_targets_refused(void **state)
{
    (void)state;
    assert_int_equal(mkfifo(tpath("fifo"), 0600), 0);
    assert_int_equal(symlink("/dev/null", tpath("null")), 0);
    mkdir(tpath("adir"), 0755);
    const char *names[3] = {"fifo", "null", "adir"}, *kinds[3] = {"a FIFO", "a character device", "a directory"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tsr_file_check_output(tpath(names[i]), NULL, 0), TSR_EINVAL);
        assert_non_null(strstr(tsr_last_error(), kinds[i]));
        /* The writer refuses too, and leaves nothing behind. */
        assert_int_equal(tsr_file_write_atomic(tpath(names[i]), "x", 1), TSR_EINVAL);
        char tmp[700];
        assert_int_equal(tsr_file_tmpname(tpath(names[i]), tmp, sizeof tmp), TSR_OK);
        assert_int_not_equal(access(tmp, F_OK), 0);
    }
    struct stat st;
    assert_int_equal(lstat(tpath("fifo"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(lstat(tpath("null"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void test_writes_through_links(void **state)
{
    (void)state;
    put("target.txt", "old");
    assert_int_equal(symlink("target.txt", tpath("link.txt")), 0);
    assert_int_equal(symlink("link.txt", tpath("link2.txt")), 0);
    char res[700];
    assert_int_equal(tsr_file_resolve(tpath("link2.txt"), res, sizeof res), TSR_OK);
    assert_string_equal(res, tpath("target.txt"));
    assert_int_equal(tsr_file_write_atomic(tpath("link2.txt"), "new", 3), TSR_OK);
    struct stat st;
    assert_int_equal(lstat(tpath("link2.txt"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_contents("target.txt", "new");
}

static void test_planted_temporary_not_followed(void **state)
{
    (void)state;
    put("victim", "keep");
    char tmp[700];
    assert_int_equal(tsr_file_tmpname(tpath("out.txt"), tmp, sizeof tmp), TSR_OK);
    assert_int_equal(symlink(tpath("victim"), tmp), 0);
    assert_int_equal(tsr_file_write_atomic(tpath("out.txt"), "fresh", 5), TSR_OK);
    assert_contents("victim", "keep");
}

static void test_inputs(void **state)
{
    (void)state;
    put("ok.ini", "[x]\n");
    assert_int_equal(tsr_file_check_input(tpath("ok.ini"), "an INI file"), TSR_OK);
    assert_int_equal(mkfifo(tpath("in-fifo"), 0600), 0);
    /* Returns at once: a FIFO without a writer is never opened. */
    assert_int_equal(tsr_file_check_input(tpath("in-fifo"), "an INI file"), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "is a FIFO, not a regular file; expected an INI file"));
    assert_int_equal(tsr_file_check_input("/dev/zero", "data"), TSR_EDATA);
    assert_int_equal(tsr_file_check_input(dir, "data"), TSR_EDATA);
    assert_int_equal(tsr_file_check_input(tpath("missing"), "data"), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "no such file"));
}

static void test_printable(void **state)
{
    (void)state;
    char out[256], again[256];
    /* C0, DEL, a C1 control (U+009B), invalid and overlong UTF-8 escaped; valid UTF-8 kept. */
    tsr_text_printable("a\nb\tc\033[2J\x7f \xc2\x9b caf\xc3\xa9 \xff\xc0\xaf \xe2\x82", out, sizeof out);
    assert_string_equal(out, "a\\nb\\tc\\x1B[2J\\x7F \\xC2\\x9B caf\xc3\xa9 \\xFF\\xC0\\xAF \\xE2\\x82");
    tsr_text_printable(out, again, sizeof again);
    assert_string_equal(again, out);
    /* Cut short, never mid-escape, always terminated. */
    assert_true(tsr_text_printable("\n\n\n\n\n\n", out, 8) <= 7);
    assert_string_equal(out, "\\n\\n");
    /* Every error message goes through it. */
    tsr_error_set(TSR_EINVAL, "key '%s'", "\033]0;title\007");
    assert_string_equal(tsr_last_error(), "key '\\x1B]0;title\\x07'");
    tsr_error_prefix(TSR_EINVAL, "file\n%s: ", "x");
    assert_string_equal(tsr_last_error(), "file\\nx: key '\\x1B]0;title\\x07'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_same_as_input),
        cmocka_unit_test(test_special_targets_refused),
        cmocka_unit_test(test_writes_through_links),
        cmocka_unit_test(test_planted_temporary_not_followed),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
