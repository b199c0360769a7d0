// <unistd.h> bits Tmds.LibC 0.5.0 lacks.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class unistd
{
    /// <summary>The kernel's id of the calling thread: /proc/self/task/&lt;tid&gt;/ names it.</summary>
    [DllImport("libc")]
    public static extern int gettid();
}
