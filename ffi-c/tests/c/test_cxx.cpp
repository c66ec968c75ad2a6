// The header from C++: it must compile with -Wall -Wextra -Werror, link, and keep its values.
#include "eventsource.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(ES_OK == 0, "ES_OK is 0");
static_assert(ES_CLOSED == 2, "readyState values are the spec's");
static_assert(sizeof(es_status) == 4, "es_status is 32-bit");
static_assert(std::is_standard_layout<es_event>::value, "es_event is a C struct");

int main() {
    int failed = 0;
    if (std::strlen(es_version()) == 0) failed++;
    if (es_abi_version() != ES_ABI_VERSION) failed++;
    es_options *o = es_options_new();
    if (es_options_set_header(o, "X-A", "b") != ES_OK) failed++;
    es_source *src = nullptr;
    if (es_source_new("::not a url::", o, nullptr, &src) != ES_ERR_INVALID_URL) failed++;
    if (src != nullptr) failed++;
    es_options_free(o);
    es_callbacks cbs{};
    cbs.on_open = [](void *, es_source *) {};
    if (es_source_new(nullptr, nullptr, &cbs, &src) != ES_ERR_INVALID_ARGUMENT) failed++;
    std::printf("%d passed, %d failed\n", failed ? 0 : 1, failed ? 1 : 0);
    return failed ? 1 : 0;
}
