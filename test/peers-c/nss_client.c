/*
 * An HTTPS client on NSS that keeps one connection for several requests (tstclnt sends one
 * and waits for the server to close). For tapwire's tests only: it accepts any server
 * certificate, since what is tested is the capture, not the trust.
 *
 *   nss_client ADDRESS PORT PATH...   GET each PATH in turn on one connection; prints
 *                                     "LOCALPORT STATUS BODY" per response
 */
#include <nss.h>
#include <prerror.h>
#include <prio.h>
#include <prnetdb.h>
#include <ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static SECStatus accept_any(void *arg, PRFileDesc *fd, PRBool check_sig, PRBool is_server)
{
	return SECSuccess;
}

static void fail(const char *what)
{
	fprintf(stderr, "nss_client: %s failed: error %d\n", what, PR_GetError());
	exit(1);
}

/* Reads one response with a Content-Length; its body goes to `body` (NUL-terminated). */
static int read_response(PRFileDesc *fd, char *body, int cap)
{
	static char buf[1 << 16];
	static int have = 0;
	char *end;
	while (!(end = strstr(buf, "\r\n\r\n"))) {
		int n = PR_Read(fd, buf + have, (int)sizeof(buf) - 1 - have);
		if (n <= 0)
			fail("PR_Read (head)");
		have += n;
		buf[have] = 0;
	}
	int status = atoi(buf + 9);
	char *cl = strstr(buf, "Content-Length: ");
	int length = cl && cl < end ? atoi(cl + 16) : 0;
	int head = (int)(end + 4 - buf);
	while (have - head < length) {
		int n = PR_Read(fd, buf + have, (int)sizeof(buf) - 1 - have);
		if (n <= 0)
			fail("PR_Read (body)");
		have += n;
	}
	int copy = length < cap - 1 ? length : cap - 1;
	memcpy(body, buf + head, copy);
	body[copy] = 0;
	/* What came after this response stays for the next one. */
	memmove(buf, buf + head + length, have - head - length);
	have -= head + length;
	buf[have] = 0;
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: nss_client ADDRESS PORT PATH...\n");
		return 2;
	}
	if (NSS_NoDB_Init(NULL) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess)
		fail("NSS_NoDB_Init");
	PRNetAddr addr;
	if (PR_StringToNetAddr(argv[1], &addr) != PR_SUCCESS)
		fail("PR_StringToNetAddr");
	addr.inet.port = PR_htons((PRUint16)atoi(argv[2]));
	PRFileDesc *tcp = PR_NewTCPSocket();
	if (!tcp)
		fail("PR_NewTCPSocket");
	PRFileDesc *fd = SSL_ImportFD(NULL, tcp);
	if (!fd)
		fail("SSL_ImportFD");
	SSL_OptionSet(fd, SSL_HANDSHAKE_AS_CLIENT, PR_TRUE);
	SSL_AuthCertificateHook(fd, accept_any, NULL);
	SSL_SetURL(fd, "localhost");
	if (PR_Connect(fd, &addr, PR_INTERVAL_NO_TIMEOUT) != PR_SUCCESS)
		fail("PR_Connect");
	PRNetAddr local;
	if (PR_GetSockName(fd, &local) != PR_SUCCESS)
		fail("PR_GetSockName");
	for (int i = 3; i < argc; i++) {
		char request[1024];
		int n = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: nss_client\r\n\r\n", argv[i], argv[1], argv[2]);
		if (PR_Write(fd, request, n) != n)
			fail("PR_Write");
		char body[4096];
		int status = read_response(fd, body, sizeof(body));
		printf("%d %d %s", PR_ntohs(local.inet.port), status, body);
		fflush(stdout);
	}
	PR_Close(fd);
	NSS_Shutdown();
	return 0;
}
