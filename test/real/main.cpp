#define BOOST_TEST_MODULE real
#include <boost/test/unit_test.hpp>
