// <fcntl.h>: open(2), for the spare descriptor of EmfilePolicy.ReserveFd (libuv opens "/" the same way).
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class fcntl
{
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    // DllImport, as the other Interop files: LibraryImport's generated partial class repeats the C name outside the
    // CS8981 pragma of this file.
    [DllImport("libc", SetLastError = true)]
    public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
}
