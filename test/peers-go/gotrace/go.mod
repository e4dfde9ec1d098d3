module tapwire.test/gotrace

go 1.19
