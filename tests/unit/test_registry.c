/* SPDX-License-Identifier: BSD-3-Clause */
/* Registry: id syntax (nothing escapes the directory), versions per name,
 * listing with filters, PATCH rules, removal, refusing files that are not
 * models. Real HDF5 model files in TSR_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/registry.h"

static char dir[4096], model_path[4200];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TSR_TEST_TMP");
    char base[2048];
    snprintf(base, sizeof base, "%s", tmp && tmp[0] ? tmp : "/tmp");
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/registry.XXXXXX", base);
    if (!mkdtemp(dir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/digits-model.h5", dir);
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, (const size_t[]){4, 8, 3}, 2, TSR_ACT_RELU, TSR_LOSS_XENT);
    tsr_model_t *m = NULL;
    if (tsr_model_create(&spec, 4, &m))
        return -1;
    tsr_model_init(m, 1);
    const char *attrs[] = {"test_accuracy", "0.875"};
    int rc = tsr_model_save(m, model_path, attrs, 1);
    tsr_model_destroy(m);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static tsr_registry_t *open_reg(const char *sub)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    tsr_registry_t *r = NULL;
    assert_int_equal(tsr_registry_create(p, &r), TSR_OK);
    return r;
}

static void test_ids(void **state)
{
    (void)state;
    const char *bad[] = {"", ".", "..", "../x", "a/b", "/etc/passwd", ".hidden", "-v1", "a b", "a\\b", "x%2f", NULL};
    for (int i = 0; bad[i]; i++)
        assert_false(tsr_registry_id_valid(bad[i]));
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_false(tsr_registry_id_valid(longid));
    assert_false(tsr_registry_id_valid(NULL));
    assert_true(tsr_registry_id_valid("digits-v1"));
    assert_true(tsr_registry_id_valid("a.b_c-v10"));
}

static json_t *list(tsr_registry_t *r, const char *name, const char *tag, const char *status)
{
    char *s = tsr_registry_list_json(r, name, tag, status);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_array(j));
    return j;
}

static void test_add_list(void **state)
{
    (void)state;
    tsr_registry_t *r = open_reg("a/b"); /* made on first add, parents too */
    char id[TSR_REGISTRY_ID_MAX], path[4096];
    json_t *l = list(r, NULL, NULL, NULL); /* no directory yet: empty */
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    assert_int_equal(tsr_registry_add(r, model_path, "digits", id, sizeof id), TSR_OK);
    assert_string_equal(id, "digits-v1");
    assert_int_equal(tsr_registry_add(r, model_path, "digits", id, sizeof id), TSR_OK);
    assert_string_equal(id, "digits-v2");
    assert_int_equal(tsr_registry_add(r, model_path, NULL, id, sizeof id), TSR_OK);
    assert_string_equal(id, "digits-model-v1"); /* the file's name */
    assert_int_equal(tsr_registry_add(r, model_path, "../../evil name", id, sizeof id), TSR_OK);
    assert_true(tsr_registry_id_valid(id));
    assert_null(strchr(id, '/'));
    assert_int_equal(tsr_registry_model_path(r, "digits-v2", path, sizeof path), TSR_OK);
    assert_int_equal(access(path, R_OK), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    l = list(r, "digits", NULL, NULL);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "id")), "digits-v1");
    json_t *m = json_array_get(l, 1);
    assert_int_equal(json_integer_value(json_object_get(m, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(m, "inputs")), 4);
    assert_int_equal(json_integer_value(json_object_get(m, "outputs")), 3);
    assert_float_equal(json_real_value(json_object_get(m, "test_accuracy")), 0.875, 1e-12);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "registered");
    json_decref(l);
    l = list(r, NULL, NULL, NULL);
    assert_int_equal(json_array_size(l), 4);
    json_decref(l);
    tsr_registry_destroy(r);
}

static void test_patch(void **state)
{
    (void)state;
    tsr_registry_t *r = open_reg("p");
    char id[TSR_REGISTRY_ID_MAX];
    assert_int_equal(tsr_registry_add(r, model_path, "m", id, sizeof id), TSR_OK);
    const char *ok = "{\"tags\":[\"best\",\"cpu\"],\"status\":\"production\",\"description\":\"first\","
                     "\"metadata\":{\"owner\":\"ana\",\"lr\":0.1}}";
    assert_int_equal(tsr_registry_update(r, id, ok, strlen(ok)), TSR_OK);
    const char *del = "{\"metadata\":{\"lr\":null}}";
    assert_int_equal(tsr_registry_update(r, id, del, strlen(del)), TSR_OK);
    char *s = tsr_registry_get_json(r, id);
    json_t *m = json_loads(s, 0, NULL);
    free(s);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "production");
    assert_int_equal(json_array_size(json_object_get(m, "tags")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "metadata"), "owner")), "ana");
    assert_null(json_object_get(json_object_get(m, "metadata"), "lr"));
    json_decref(m);
    const char *bad[] = {"{\"status\":\"gone\"}",
                         "{\"tags\":\"x\"}",
                         "{\"tags\":[\"a b\"]}",
                         "{\"id\":\"x\"}",
                         "{\"metadata\":{\"k\":[1]}}",
                         "[1]",
                         "{bad",
                         "[[[[[[[[[[1]]]]]]]]]]",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(tsr_registry_update(r, id, bad[i], strlen(bad[i])), TSR_EINVAL);
        assert_true(strlen(tsr_last_error()) > 0);
    }
    /* A refused patch changes nothing, not even its valid part. */
    const char *half = "{\"status\":\"archived\",\"tags\":7}";
    assert_int_equal(tsr_registry_update(r, id, half, strlen(half)), TSR_EINVAL);
    s = tsr_registry_get_json(r, id);
    assert_non_null(strstr(s, "\"production\""));
    free(s);
    assert_int_equal(tsr_registry_update(r, "m-v9", ok, strlen(ok)), TSR_EDATA);

    json_t *l = list(r, NULL, "best", NULL);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    l = list(r, NULL, "nope", NULL);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    l = list(r, NULL, NULL, "production");
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);

    char latest[TSR_REGISTRY_ID_MAX];
    assert_int_equal(tsr_registry_add(r, model_path, "m", latest, sizeof latest), TSR_OK);
    assert_int_equal(tsr_registry_latest(r, "production", latest, sizeof latest), TSR_OK);
    assert_string_equal(latest, id);
    assert_int_equal(tsr_registry_latest(r, NULL, latest, sizeof latest), TSR_OK);
    assert_string_equal(latest, "m-v2");
    assert_int_equal(tsr_registry_latest(r, "staging", latest, sizeof latest), TSR_EDATA);
    tsr_registry_destroy(r);
}

static void test_remove_and_refuse(void **state)
{
    (void)state;
    tsr_registry_t *r = open_reg("r");
    char id[TSR_REGISTRY_ID_MAX], tmp[4096], path[4096];
    assert_int_equal(tsr_registry_add(r, model_path, "m", id, sizeof id), TSR_OK);
    assert_true(tsr_registry_exists(r, id));
    assert_int_equal(tsr_registry_remove(r, id), TSR_OK);
    assert_false(tsr_registry_exists(r, id));
    assert_int_equal(tsr_registry_remove(r, id), TSR_EDATA);
    assert_int_equal(tsr_registry_model_path(r, id, path, sizeof path), TSR_EDATA);
    assert_int_equal(tsr_registry_remove(r, "../p/m-v1"), TSR_EINVAL);
    /* A deleted id is never handed out again, not even by a registry
     * opened afresh on the directory (a restarted coordinator). */
    assert_int_equal(tsr_registry_add(r, model_path, "m", id, sizeof id), TSR_OK);
    assert_string_equal(id, "m-v2");
    assert_int_equal(tsr_registry_remove(r, id), TSR_OK);
    tsr_registry_destroy(r);
    r = open_reg("r");
    assert_int_equal(tsr_registry_add(r, model_path, "m", id, sizeof id), TSR_OK);
    assert_string_equal(id, "m-v3");

    /* An upload that is not a model is refused and its file removed. */
    int fd = tsr_registry_tmpfile(r, tmp, sizeof tmp);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a model", 11), 11);
    close(fd);
    assert_int_equal(tsr_registry_adopt(r, tmp, "junk", "test", id, sizeof id), TSR_EDATA);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* So is a file that does not exist. */
    assert_int_not_equal(tsr_registry_add(r, "/nonexistent/model.h5", "x", id, sizeof id), TSR_OK);
    json_t *l = list(r, "junk", NULL, NULL);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    tsr_registry_destroy(r);
    tsr_registry_destroy(NULL);
}

/* Files of the directory that are not regular files (a FIFO where metadata
 * or the version record goes) are refused at once, never waited on or
 * replaced; a model declaring more than the budget is refused. */
static void test_not_regular(void **state)
{
    (void)state;
    tsr_registry_t *r = open_reg("fifo");
    char id[TSR_REGISTRY_ID_MAX], p[4400];
    struct stat st;
    assert_int_equal(tsr_registry_add(r, model_path, "f", id, sizeof id), TSR_OK);
    snprintf(p, sizeof p, "%s/fifo/f-v1.json", dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_null(tsr_registry_get_json(r, "f-v1"));
    assert_int_equal(tsr_registry_update(r, "f-v1", "{\"description\":\"x\"}", 18), TSR_EIO);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    json_t *l = list(r, NULL, NULL, NULL);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    snprintf(p, sizeof p, "%s/fifo/.versions", dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(tsr_registry_add(r, model_path, "f", id, sizeof id), TSR_EIO);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(unlink(p), 0);
    /* The budget: the test model has 4*8+8 + 8*3+3 = 67 parameters. */
    tsr_registry_set_max_params(r, 66);
    assert_int_equal(tsr_registry_add(r, model_path, "f", id, sizeof id), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "max_model_params"));
    tsr_registry_set_max_params(r, 67);
    assert_int_equal(tsr_registry_add(r, model_path, "f", id, sizeof id), TSR_OK);
    assert_string_equal(id, "f-v2");
    tsr_registry_destroy(r);
}

/* A stale upload (over an hour old) is removed when the registry opens; a
 * fresh one, perhaps still being received by another coordinator, stays. */
static void test_stale_uploads(void **state)
{
    (void)state;
    tsr_registry_t *r = open_reg("s");
    char old[4096], fresh[4096];
    int fd = tsr_registry_tmpfile(r, old, sizeof old);
    assert_true(fd >= 0);
    close(fd);
    fd = tsr_registry_tmpfile(r, fresh, sizeof fresh);
    assert_true(fd >= 0);
    close(fd);
    struct timespec t[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    assert_int_equal(utimensat(AT_FDCWD, old, t, 0), 0);
    tsr_registry_destroy(r);
    r = open_reg("s");
    assert_int_not_equal(access(old, F_OK), 0);
    assert_int_equal(access(fresh, F_OK), 0);
    unlink(fresh);
    tsr_registry_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),           cmocka_unit_test(test_add_list),
        cmocka_unit_test(test_patch),         cmocka_unit_test(test_remove_and_refuse),
        cmocka_unit_test(test_stale_uploads), cmocka_unit_test(test_not_regular),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
