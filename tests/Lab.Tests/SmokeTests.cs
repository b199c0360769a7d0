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
        foreach (var dep in new[] { "Tmds.LibC.dll", "Microsoft.DotNet.Interactive.Formatting.dll" })
            Assert.True(File.Exists(Path.Combine(root, "artifacts", "bin", "Lab", "debug", dep)), $"{dep} is not beside Lab.dll");
        // A host that #r's Lab.dll next to its own FSharp.Core (the .NET Interactive kernel) must find no F# to load.
        foreach (var gone in FSharpAssemblies)
            Assert.False(File.Exists(Path.Combine(root, "artifacts", "bin", "Lab", "debug", gone + ".dll")), $"{gone}.dll is beside Lab.dll");
    }

    /// <summary>Plotly.NET and what it brings: F# on FSharp.Core 10.1, whose charts threw MissingMethodException in a process holding another FSharp.Core.</summary>
    static readonly string[] FSharpAssemblies = ["FSharp.Core", "Plotly.NET", "Plotly.NET.CSharp", "Giraffe.ViewEngine", "DynamicObj", "Fable.Core"];

    [Theory]
    [InlineData("Lab", "Lab.dll")]
    [InlineData("Lab.Cli", "Lab.Cli.dll")]
    public void TheBuiltAssembliesReferenceNoFSharp(string project, string file)
    {
        var path = Path.Combine(RepoRoot.Path, "artifacts", "bin", project, "debug", file);
        // A collectible context of its own: the references are read from metadata; no code of the DLL runs.
        var context = new System.Runtime.Loader.AssemblyLoadContext("references of " + file, isCollectible: true);
        try
        {
            var references = context.LoadFromAssemblyPath(path).GetReferencedAssemblies().Select(a => a.Name).ToList();
            Assert.Contains("System.Text.Json", references); // the figure's JSON: the list is real, not empty
            foreach (var name in FSharpAssemblies) Assert.DoesNotContain(name, references);
        }
        finally { context.Unload(); }
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
