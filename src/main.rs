fn main() -> color_eyre::Result<()> {
    pulsewatch::cli::main()
}
