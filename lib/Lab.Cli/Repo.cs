namespace Lab.Cli;

/// <summary>Where the checkout is: the verbs find notebooks/ and artifacts/ from it.</summary>
static class Repo
{
    /// <summary>The repository's root: the folder above holding Lab.sln (from the current directory, then from this program's own place).</summary>
    public static string Root()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Lab.sln"))) return d.FullName;
        }
        return Directory.GetCurrentDirectory();
    }
}
