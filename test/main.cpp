// The main() of every Boost.Test binary (dynamic Boost.Test).
#define BOOST_TEST_MODULE gprofiler_agent
#include <boost/test/unit_test.hpp>
