/* options.c — the `options` object of inference requests and the model's params layer.
 *
 * One table names every option Ollama knows and its type. Values are layered: Ollama's
 * defaults (sched_params_default), then the model's params layer, then the request's
 * options; the last layer that sets an option wins (`stop` is replaced as a whole).
 * A request option of the wrong type is a 500 naming the option, as Ollama answers it
 * (spec I.75: Ollama decodes the options inside the scheduler, whose failures are 500s);
 * CORE_INTERNAL is the code that maps to 500. A model's params layer (create's
 * `parameters`) of the wrong type stays a 400: that is a bad create request. Unknown keys
 * are ignored with a warning, as Ollama does. Options dwell's engine does not implement are accepted when they
 * have their neutral value and refused otherwise, so nothing is silently ignored. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

enum opt_type { OPT_INT, OPT_FLOAT, OPT_BOOL, OPT_STOP, OPT_DURATION };

typedef struct opt_def {
    const char *name;
    int type;
    bool engine;        /* dwell implements it */
    double neutral;     /* for unimplemented numeric options: the value that means "off" */
} opt_def;

static const opt_def k_opts[] = {
    {"num_keep", OPT_INT, true, 0},        {"seed", OPT_INT, true, 0},
    {"num_predict", OPT_INT, true, 0},     {"top_k", OPT_INT, true, 0},
    {"top_p", OPT_FLOAT, true, 0},         {"min_p", OPT_FLOAT, true, 0},
    {"typical_p", OPT_FLOAT, false, 1},    {"repeat_last_n", OPT_INT, true, 0},
    {"temperature", OPT_FLOAT, true, 0},   {"repeat_penalty", OPT_FLOAT, true, 0},
    {"presence_penalty", OPT_FLOAT, true, 0}, {"frequency_penalty", OPT_FLOAT, true, 0},
    {"tfs_z", OPT_FLOAT, false, 1},        {"mirostat", OPT_INT, false, 0},
    {"mirostat_tau", OPT_FLOAT, false, -1}, {"mirostat_eta", OPT_FLOAT, false, -1},
    {"penalize_newline", OPT_BOOL, false, -1}, {"stop", OPT_STOP, true, 0},
    {"numa", OPT_BOOL, false, -1},         {"num_ctx", OPT_INT, true, 0},
    {"num_batch", OPT_INT, true, 0},       {"num_gpu", OPT_INT, false, -1},
    {"main_gpu", OPT_INT, false, -1},      {"low_vram", OPT_BOOL, false, -1},
    {"f16_kv", OPT_BOOL, false, -1},       {"logits_all", OPT_BOOL, false, -1},
    {"vocab_only", OPT_BOOL, false, -1},   {"use_mmap", OPT_BOOL, false, -1},
    {"use_mlock", OPT_BOOL, false, -1},    {"num_thread", OPT_INT, true, 0},
    {"keep_alive", OPT_DURATION, true, 0},
};

static const opt_def *opt_find(const char *name)
{
    for (size_t i = 0; i < sizeof k_opts / sizeof k_opts[0]; i++)
        if (strcmp(k_opts[i].name, name) == 0) return &k_opts[i];
    return NULL;
}

static int check_one(const opt_def *d, const char *key, json_t *v, bool is_params,
                     core_err *err)
{
    int tcode = is_params ? CORE_INVALID : CORE_INTERNAL; /* spec I.75: 500 on requests */
    switch (d->type) {
    case OPT_INT:
        if (json_is_integer(v)) break;
        if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) break;
        return core_err_set(err, tcode, "option \"%s\" must be of type integer", key);
    case OPT_FLOAT:
        if (!json_is_number(v))
            return core_err_set(err, tcode, "option \"%s\" must be of type float", key);
        break;
    case OPT_BOOL:
        if (!json_is_boolean(v))
            return core_err_set(err, tcode, "option \"%s\" must be of type boolean", key);
        break;
    case OPT_STOP:
        if (json_is_string(v)) break;
        if (!json_is_array(v))
            return core_err_set(err, tcode, "option \"stop\" must be of type array of "
                                "strings");
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)))
                return core_err_set(err, tcode, "option \"stop\" must be of type array "
                                    "of strings");
        if (json_array_size(v) > SRV_MAX_STOPS) /* refused rather than cut short */
            return core_err_set(err, CORE_INVALID, "option \"stop\": %zu stop strings, at "
                                "most %d are supported", json_array_size(v), SRV_MAX_STOPS);
        break;
    case OPT_DURATION:
        if (!is_params)
            return core_err_set(err, CORE_INVALID, "keep_alive is a request field, not an "
                                "option");
        if (json_is_string(v)) {
            int64_t ns;
            core_err e;
            if (srv_duration_parse(json_string_value(v), true, &ns, &e))
                return core_err_set(err, CORE_INVALID, "parameter keep_alive: %s", e.msg);
        } else if (!json_is_number(v)) {
            return core_err_set(err, CORE_INVALID, "parameter keep_alive must be a duration");
        }
        break;
    }
    if (!d->engine && d->type != OPT_BOOL && d->neutral >= 0 && json_is_number(v) &&
        json_number_value(v) != d->neutral)
        return core_err_set(err, CORE_UNSUPPORTED, "option \"%s\" is not supported by dwell "
                            "(only %g is)", key, d->neutral);
    return CORE_OK;
}

int srv_options_check(json_t *opts, bool is_params, core_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v) {
        if (json_is_null(v)) continue;
        const opt_def *d = opt_find(key);
        if (!d) {
            CORE_WARN("invalid option provided: \"%s\" (ignored)", key);
            continue;
        }
        int rc = check_one(d, key, v, is_params, err);
        if (rc) return rc;
    }
    return CORE_OK;
}

/* x as an int32 option, saturated: a JSON number may be far outside int32 (converting it
 * unchecked is undefined behaviour). INT32_MAX means "no limit" for every count option. */
static int32_t opt_i32(double x)
{
    if (x >= (double)INT32_MAX) return INT32_MAX;
    if (x <= (double)INT32_MIN) return INT32_MIN;
    return (int32_t)x;
}

/* Applies one already checked layer to p; stops go to st. */
static int apply_layer(json_t *opts, sched_params *p, srv_stops *st, core_err *err)
{
    eng_sampler_params *sp = &p->sampler;
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v) {
        if (json_is_null(v)) continue;
        double x = json_is_number(v) ? json_number_value(v) : 0;
        if (!strcmp(key, "temperature")) sp->temperature = (float)x;
        else if (!strcmp(key, "top_k")) sp->top_k = opt_i32(x);
        else if (!strcmp(key, "top_p")) sp->top_p = (float)x;
        else if (!strcmp(key, "min_p")) sp->min_p = (float)x;
        else if (!strcmp(key, "repeat_penalty")) sp->repeat_penalty = (float)x;
        else if (!strcmp(key, "repeat_last_n")) sp->repeat_last_n = opt_i32(x);
        else if (!strcmp(key, "presence_penalty")) sp->presence_penalty = (float)x;
        else if (!strcmp(key, "frequency_penalty")) sp->frequency_penalty = (float)x;
        else if (!strcmp(key, "seed")) {
            /* Ollama: a negative seed means "random". */
            sp->has_seed = x >= 0;
            sp->seed = x >= 0x1p64 ? UINT64_MAX : x >= 0 ? (uint64_t)x : 0;
        } else if (!strcmp(key, "num_predict")) p->num_predict = opt_i32(x);
        else if (!strcmp(key, "num_keep")) p->num_keep = opt_i32(x);
        else if (!strcmp(key, "num_ctx")) {
            if (x < 0 || x > 1e9)
                return core_err_set(err, CORE_INVALID, "option \"num_ctx\" out of range");
            p->num_ctx = (int64_t)x;
        } else if (!strcmp(key, "num_batch")) {
            if (x < 0 || x > 65536) /* the engine's limit (eng_ctx_new) */
                return core_err_set(err, CORE_INVALID, "option \"num_batch\" out of range "
                                    "(0 to 65536)");
            p->num_batch = (int32_t)x;
        } else if (!strcmp(key, "num_thread")) {
            if (x < 0 || x > 1024)
                return core_err_set(err, CORE_INVALID, "option \"num_thread\" out of range");
            p->num_thread = (int32_t)x;
        } else if (!strcmp(key, "stop")) {
            st->n = 0;
            if (json_is_string(v)) {
                st->v[st->n++] = json_string_value(v);
            } else {
                for (size_t i = 0; i < json_array_size(v) && st->n < SRV_MAX_STOPS; i++)
                    st->v[st->n++] = json_string_value(json_array_get(v, i));
            }
        }
    }
    if (sp->temperature < 0 || sp->top_p < 0 || sp->min_p < 0 || sp->repeat_penalty < 0)
        return core_err_set(err, CORE_INVALID, "temperature, top_p, min_p and repeat_penalty "
                            "must not be negative");
    return CORE_OK;
}

int srv_options_apply(json_t *model_params, json_t *req_opts, sched_params *p, srv_stops *st,
                      core_err *err)
{
    if (model_params) {
        /* The params layer was checked at create; one from an Ollama store is checked now,
         * and a bad value is the model's fault, not the request's: it is skipped. */
        core_err e;
        if (srv_options_check(model_params, true, &e) == CORE_OK) {
            if (apply_layer(model_params, p, st, &e))
                CORE_WARN("model parameters ignored: %s", e.msg);
        } else {
            CORE_WARN("model parameters ignored: %s", e.msg);
        }
        json_t *ka = json_object_get(model_params, "keep_alive");
        int64_t ns;
        if (json_is_string(ka) && srv_duration_parse(json_string_value(ka), true, &ns, NULL) == 0) {
            p->model.has_keep_alive = true;
            p->model.keep_alive_ns = ns;
        } else if (json_is_number(ka)) {
            p->model.has_keep_alive = true;
            double m = json_number_value(ka);
            p->model.keep_alive_ns = m < 0 || m * 60e9 >= 9.2e18 ? SRV_FOREVER
                                                                 : (int64_t)(m * 60e9);
        }
    }
    if (req_opts) {
        if (!json_is_object(req_opts))
            return core_err_set(err, CORE_INVALID, "json: cannot unmarshal %s into Go struct "
                                "field .options of type map[string]interface {}",
                                srv_json_type_name(req_opts));
        int rc = srv_options_check(req_opts, false, err);
        if (rc) return rc;
        rc = apply_layer(req_opts, p, st, err);
        if (rc) return rc;
    }
    p->stops = st->v;
    p->n_stops = st->n;
    return CORE_OK;
}
