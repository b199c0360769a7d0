namespace Lab.Tests;

public class SmokeTests
{
    [Fact]
    public void LibraryBuildsToTheDocumentedPath()
    {
        // Notebooks reference ../artifacts/bin/Lab/debug/Lab.dll; if the build layout moves, every chapter breaks.
        var root = RepoRoot.Path;
        Assert.True(File.Exists(Path.Combine(root, "artifacts", "bin", "Lab", "debug", "Lab.dll")),
            "artifacts/bin/Lab/debug/Lab.dll is missing: Directory.Build.props must keep UseArtifactsOutput");
        foreach (var dep in new[] { "Tmds.LibC.dll", "Plotly.NET.dll", "FSharp.Core.dll", "Microsoft.DotNet.Interactive.Formatting.dll" })
            Assert.True(File.Exists(Path.Combine(root, "artifacts", "bin", "Lab", "debug", dep)), $"{dep} is not beside Lab.dll");
    }
}

/// <summary>The repository's root folder, found from the test assembly's location.</summary>
public static class RepoRoot
{
    public static string Path { get; } = Find();

    static string Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Lab.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Lab.sln not found above " + AppContext.BaseDirectory);
    }
}
