#define BOOST_TEST_MODULE format
#include <boost/test/unit_test.hpp>
