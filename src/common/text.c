/* SPDX-License-Identifier: BSD-3-Clause */
#include "common/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1-4) that is not a control
 * character, or 0: overlong forms, surrogates, code points past U+10FFFF
 * and C1 controls (U+0080..U+009F, escapes to some terminals) are 0. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n < 2)
        return n;
    unsigned cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp <= 0x9F)
        return 0;
    return n;
}

size_t tsr_text_printable(const char *in, char *out, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    if (len == 0)
        return 0;
    /* Room for the longest step (4 bytes) and the terminator. */
    while (*s && o + 5 <= len) {
        int n = utf8_len(s);
        if (n == 1 && *s >= 0x20 && *s != 0x7F) {
            out[o++] = (char)*s++;
        } else if (n > 1) {
            memcpy(out + o, s, (size_t)n);
            o += (size_t)n;
            s += n;
        } else {
            const char *named = *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : *s == '\t' ? "\\t" : NULL;
            o += named ? (size_t)snprintf(out + o, len - o, "%s", named)
                       : (size_t)snprintf(out + o, len - o, "\\x%02X", *s);
            s++;
        }
    }
    out[o] = '\0';
    return o;
}

int tsr_text_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}
