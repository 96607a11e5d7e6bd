/* internal.h — shared between the cli/ files only. */
#ifndef DWELL_CLI_INTERNAL_H
#define DWELL_CLI_INTERNAL_H

/* Debug subcommands; argv[0] is the subcommand name. Each returns an exit code. */
int cli_debug_gguf(int argc, char **argv);     /* debug_gguf.c */
int cli_debug_mkmodel(int argc, char **argv);  /* debug_mkmodel.c */
int cli_debug_tokenize(int argc, char **argv); /* debug_tok.c */
int cli_debug_logits(int argc, char **argv);   /* debug_eval.c */
int cli_debug_generate(int argc, char **argv); /* debug_eval.c */

#endif
