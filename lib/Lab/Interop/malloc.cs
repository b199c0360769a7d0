// <malloc.h>: glibc's allocator statistics (glibc 2.33 and later; Debian 12 has 2.36).
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the C headers

namespace Lab.Interop;

/// <summary>struct mallinfo2: every field a size_t. The fields the lab reads are documented.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct mallinfo2
{
    /// <summary>Bytes the main and thread arenas took from the system with brk/mmap (not counting hblkhd).</summary>
    public nuint arena;
    public nuint ordblks;
    public nuint smblks;
    public nuint hblks;
    /// <summary>Bytes in chunks malloc mmapped on their own (requests of 128 KiB and more, by default), all in use.</summary>
    public nuint hblkhd;
    public nuint usmblks;
    public nuint fsmblks;
    /// <summary>Bytes in use in the arenas: what the program malloc'd and has not freed.</summary>
    public nuint uordblks;
    /// <summary>Bytes free in the arenas: freed by the program and kept by malloc for reuse.</summary>
    public nuint fordblks;
    public nuint keepcost;
}

public static class malloc
{
    /// <summary>Walks every arena (taking each one's lock) and sums its chunks.</summary>
    [DllImport("libc")]
    public static extern mallinfo2 mallinfo2();

    /// <summary>Gives free memory at the top of the heap, and free pages inside the arenas, back to the kernel. Returns 1 if any was released.</summary>
    [DllImport("libc")]
    public static extern int malloc_trim(nuint pad);
}
