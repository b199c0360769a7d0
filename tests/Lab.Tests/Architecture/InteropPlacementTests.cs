using System.Text.RegularExpressions;

namespace Lab.Tests.Architecture;

/// <summary>
/// Every P/Invoke and every struct laid out for the kernel lives in lib/Lab/Interop/, where the layout tests
/// (tests/Lab.Tests/Interop) prove it against the C headers; so does the CS8981 suppression its C names need.
/// </summary>
public class InteropPlacementTests
{
    static readonly Regex Raw = new(@"\[(DllImport|LibraryImport)\b|delegate\s*\*\s*unmanaged|StructLayout\(\s*LayoutKind\.(Sequential|Explicit)|CS8981");

    [Fact]
    public void RawKernelCallsAndCStructsAreInInteropAlone()
    {
        var lib = Path.Combine(RepoRoot.Path, "lib");
        var interop = Path.Combine(lib, "Lab", "Interop") + Path.DirectorySeparatorChar;
        var outside = Directory.EnumerateFiles(lib, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(interop, StringComparison.Ordinal) && !f.Contains("/obj/") && !f.Contains("/bin/"))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => Raw.IsMatch(x.line))
            .Select(x => $"{Path.GetRelativePath(RepoRoot.Path, x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(outside.Count == 0, "Move these to lib/Lab/Interop/ (one file per C header) and prove their layout there:\n" + string.Join("\n", outside));
    }

    [Fact]
    public void EveryInteropFileSuppressesCS8981ItselfAndNothingWider()
    {
        var dir = Path.Combine(RepoRoot.Path, "lib", "Lab", "Interop");
        var missing = Directory.EnumerateFiles(dir, "*.cs")
            .Where(f => !File.ReadAllText(f).Contains("#pragma warning disable CS8981"))
            .Select(Path.GetFileName).ToList();
        Assert.True(missing.Count == 0, "Interop files with C names but no CS8981 pragma: " + string.Join(", ", missing));
        foreach (var config in new[] { "Directory.Build.props", "lib/Lab/Lab.csproj", ".editorconfig" }.Select(f => Path.Combine(RepoRoot.Path, f)).Where(File.Exists))
            Assert.DoesNotContain("CS8981", File.ReadAllText(config));
    }
}
