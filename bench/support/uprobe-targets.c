/* Functions for bench/uprobe-cost.ts: each begins with one instruction class the x86-64
 * kernel handles differently when a uprobe sits on it, and returns at once. main calls one
 * of them N times and prints the nanoseconds per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__asm__(
	".text\n"
	/* sub: single-stepped out of line (most function entries). */
	".globl tw_at_sub\n.type tw_at_sub,@function\ntw_at_sub:\n sub $8,%rsp\n add $8,%rsp\n ret\n"
	/* mov reg,reg: single-stepped. */
	".globl tw_at_mov\n.type tw_at_mov,@function\ntw_at_mov:\n mov %rdi,%rax\n ret\n"
	/* cmp mem,reg (Go's stack check): single-stepped. */
	".globl tw_at_cmp\n.type tw_at_cmp,@function\ntw_at_cmp:\n cmp 0(%rsp),%rsp\n ret\n"
	/* push: emulated. */
	".globl tw_at_push\n.type tw_at_push,@function\ntw_at_push:\n push %rbp\n pop %rbp\n ret\n"
	/* call rel32: emulated. */
	".globl tw_at_call\n.type tw_at_call,@function\ntw_at_call:\n call tw_leaf\n ret\n"
	/* jmp rel8: emulated. */
	".globl tw_at_jmp\n.type tw_at_jmp,@function\ntw_at_jmp:\n jmp 1f\n1:\n ret\n"
	/* jcc rel8 (taken or not, it lands on the ret): emulated. */
	".globl tw_at_jcc\n.type tw_at_jcc,@function\ntw_at_jcc:\n jne 1f\n1:\n ret\n"
	/* nop (1 byte): emulated. */
	".globl tw_at_nop\n.type tw_at_nop,@function\ntw_at_nop:\n nop\n ret\n"
	/* nop5 (0f 1f 44 00 00): optimised into a call to the uprobe trampoline where the kernel can. */
	".globl tw_at_nop5\n.type tw_at_nop5,@function\ntw_at_nop5:\n .byte 0x0f,0x1f,0x44,0x00,0x00\n ret\n"
	/* ret: a Go RET probe's instruction. */
	".globl tw_at_ret\n.type tw_at_ret,@function\ntw_at_ret:\n ret\n"
	".globl tw_leaf\n.type tw_leaf,@function\ntw_leaf:\n ret\n");

typedef void (*fn_t)(int);
extern void tw_at_sub(int), tw_at_mov(int), tw_at_cmp(int), tw_at_push(int), tw_at_call(int), tw_at_jmp(int),
	tw_at_jcc(int), tw_at_nop(int), tw_at_nop5(int), tw_at_ret(int);

static const struct { const char *name; fn_t fn; } fns[] = {
	{ "sub", tw_at_sub }, { "mov", tw_at_mov }, { "cmp", tw_at_cmp }, { "push", tw_at_push },
	{ "call", tw_at_call }, { "jmp", tw_at_jmp }, { "jcc", tw_at_jcc }, { "nop", tw_at_nop },
	{ "nop5", tw_at_nop5 }, { "ret", tw_at_ret },
};

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long n = atol(argv[2]);
	for (unsigned i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		if (strcmp(fns[i].name, argv[1]))
			continue;
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long k = 0; k < n; k++)
			fns[i].fn((int)k);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
		return 0;
	}
	return 2;
}
