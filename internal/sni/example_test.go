package sni_test

import (
	"fmt"

	"github.com/tcplb/tcplb/internal/sni"
)

func ExampleTable() {
	routes := sni.NewTable[string]()
	for pattern, pool := range map[string]string{
		"example.com":     "apex",
		"*.example.com":   "web",
		"api.example.com": "api",
	} {
		if err := routes.Add(pattern, pool); err != nil {
			fmt.Println(err)
		}
	}
	for _, name := range []string{"example.com", "www.example.com", "API.example.com.", "a.b.example.com"} {
		pool, ok := routes.Lookup(name)
		fmt.Printf("%s: %q %v\n", name, pool, ok)
	}
	fmt.Println(routes.Add("a.*.example.com", "bad"))
	// Output:
	// example.com: "apex" true
	// www.example.com: "web" true
	// API.example.com.: "api" true
	// a.b.example.com: "" false
	// pattern "a.*.example.com": '*' is only allowed as the whole first label, as in "*.example.com"
}
