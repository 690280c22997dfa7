/* Test support only: Wine 8 (Debian 12) has no bcryptprimitives.dll, whose
 * ProcessPrng the Rust standard library calls on Windows 10 and later. This shim
 * gives Wine one, over advapi32's RtlGenRandom; a real Windows has its own. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
