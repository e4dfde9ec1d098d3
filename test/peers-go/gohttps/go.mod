module tapwire.test/gohttps

go 1.19
